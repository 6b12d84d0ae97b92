// While the worker reads or applies the file, follow its progress; reload when it is done.
const box = document.getElementById("import");
const running = ["analysing", "applying"];

async function poll() {
  const response = await fetch(box.dataset.statusUrl, { credentials: "same-origin" });
  if (!response.ok) return;
  const job = await response.json();
  if (job.status !== box.dataset.status) {
    location.reload();
    return;
  }
  const bar = document.getElementById("import-progress");
  if (bar) {
    bar.max = Math.max(job.total, 1);
    bar.value = job.processed;
  }
  const count = document.getElementById("import-count");
  if (count) count.textContent = `${job.processed} / ${job.total}`;
  setTimeout(poll, 1000);
}

if (box && running.includes(box.dataset.status)) setTimeout(poll, 700);
