// The doctor's box with the guest's link, on the room page of a visit with a guest. The
// link's token arrives in the URL's fragment right after the link was made (the server
// stores only its hash and never sees a fragment): show the link once, then take the token
// out of the address bar and the history.
import { bindCopy } from "./copy-link.js";

const FRAGMENT = "#guest-link=";
const box = document.getElementById("guest-link-box");
const input = document.getElementById("guest-link-url");
const status = document.getElementById("guest-link-copied");

if (box && location.hash.startsWith(FRAGMENT)) {
  const token = location.hash.slice(FRAGMENT.length);
  history.replaceState(null, "", location.pathname + location.search);
  if (/^[A-Za-z0-9_-]+$/.test(token)) {
    input.value = box.dataset.linkPattern.replace("TOKEN", token);
    document.getElementById("guest-link-fresh").hidden = false;
    document.getElementById("guest-link-gone").hidden = true;
  }
}

bindCopy(box, input, document.getElementById("guest-link-copy"), status);
