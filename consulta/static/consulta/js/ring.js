// Ringtones, synthesised with the Web Audio API: no audio files to ship or to fetch. Each
// tone is a pattern of notes repeated every `period` seconds until stop() is called.
//
// Browsers keep a page's audio suspended until the person has used the page (a click, a
// key). Ringing then starts silent and sounds from the first interaction on; nothing here
// ever throws, so the incoming-call dialog works with or without sound.

// [start (s), length (s), frequencies (Hz), "hold" (a telephone's steady tone) or "strike"
// (a struck bar that dies away)]
const TONES = {
  classic: {
    period: 4,
    notes: [
      [0, 0.4, [440, 480], "hold"],
      [0.6, 0.4, [440, 480], "hold"],
    ],
  },
  chime: {
    period: 3,
    notes: [
      [0, 0.7, [987.77], "strike"],
      [0.35, 0.7, [783.99], "strike"],
      [0.7, 1.2, [659.25], "strike"],
    ],
  },
  pulse: {
    period: 2,
    notes: [
      [0, 0.12, [1046.5], "hold"],
      [0.2, 0.12, [1046.5], "hold"],
      [0.4, 0.12, [1046.5], "hold"],
    ],
  },
  soft: {
    period: 3.2,
    notes: [
      [0, 0.9, [523.25, 1046.5], "strike"],
      [0.3, 0.9, [659.25, 1318.5], "strike"],
      [0.6, 1.4, [783.99, 1568], "strike"],
    ],
  },
};

let context = null;

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!context) {
    context = new Context();
    const resume = () => {
      if (context.state === "suspended") context.resume().catch(() => {});
    };
    for (const type of ["pointerdown", "keydown", "touchstart"]) {
      document.addEventListener(type, resume, { capture: true, passive: true });
    }
  }
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

// 0–100 as people hear it: loudness grows roughly with the square of the amplitude.
function levelOf(volume) {
  const share = Math.min(100, Math.max(0, Number(volume) || 0)) / 100;
  return share * share * 0.5;
}

function playNote(ctx, destination, at, [start, length, frequencies, shape]) {
  const begin = at + start;
  const end = begin + length;
  const envelope = ctx.createGain();
  envelope.gain.setValueAtTime(0.0001, begin);
  envelope.gain.exponentialRampToValueAtTime(1 / frequencies.length, begin + 0.015);
  if (shape === "hold") {
    envelope.gain.setValueAtTime(1 / frequencies.length, end - 0.03);
  }
  envelope.gain.exponentialRampToValueAtTime(0.0001, end);
  envelope.connect(destination);
  for (const frequency of frequencies) {
    const oscillator = ctx.createOscillator();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    oscillator.connect(envelope);
    oscillator.start(begin);
    oscillator.stop(end + 0.05);
  }
}

export function toneLength(tone) {
  return (TONES[tone] || TONES.classic).period;
}

// Rings until the returned stop() is called.
export function startRinging({ tone, volume }) {
  let stopped = false;
  let timer = null;
  let output = null;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
    if (output) {
      try {
        output.disconnect();
      } catch {
        // already disconnected
      }
    }
  };
  try {
    const ctx = audioContext();
    const level = levelOf(volume);
    if (!ctx || level <= 0) return stop;
    const pattern = TONES[tone] || TONES.classic;
    output = ctx.createGain();
    output.gain.value = level;
    output.connect(ctx.destination);
    let next = ctx.currentTime + 0.05;
    // Notes are scheduled a period ahead, on the audio clock: timers may be late, the
    // sound is not.
    const schedule = () => {
      if (stopped) return;
      if (next < ctx.currentTime) next = ctx.currentTime + 0.05; // back from a suspension
      while (next < ctx.currentTime + pattern.period) {
        for (const note of pattern.notes) playNote(ctx, output, next, note);
        next += pattern.period;
      }
    };
    schedule();
    timer = setInterval(schedule, 500);
  } catch (error) {
    console.warn("the ringtone could not play", error);
  }
  return stop;
}
