// eddy's console script: what is better live. Every page works without it.
"use strict";

// The events page's live tail: each committed event, as the server sends it, at the top.
function startTail(live) {
  const state = document.getElementById("tail-state");
  const body = document.querySelector("#events tbody");
  const source = new EventSource(live.dataset.tail);
  source.addEventListener("journal", (message) => {
    const e = JSON.parse(message.data);
    const row = document.createElement("tr");
    const cell = (text, href, className) => {
      const td = document.createElement("td");
      if (className) td.className = className;
      if (href) {
        const a = document.createElement("a");
        a.href = href;
        a.textContent = text;
        td.appendChild(a);
      } else {
        td.textContent = text;
      }
      row.appendChild(td);
    };
    cell(String(e.sequence), e.href, "n");
    cell(e.time);
    cell(e.source);
    cell(e.kind);
    cell(e.key, e.href, "key");
    cell("new: open it to see its deliveries", null, "muted");
    body.insertBefore(row, body.firstChild);
  });
  source.onerror = () => { state.textContent = "Live tail paused; it resumes when eddy answers again."; };
  source.onopen = () => { state.textContent = "Live: new events appear at the top as they are committed."; };
}

// Uploads with progress: each chosen file goes to the upload endpoint as the request body.
function startUploads(form) {
  const input = form.querySelector("input[type=file]");
  const bar = form.querySelector("progress");
  const status = form.querySelector("output");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(input.files);
    if (files.length === 0) { status.textContent = "Choose a file first."; return; }
    bar.hidden = false;
    for (const file of files) {
      const key = form.dataset.prefix + file.name;
      try {
        await upload(form, file, key, (done) => { bar.value = done; });
        status.textContent = "Uploaded " + key + ".";
      } catch (error) {
        status.textContent = "Upload of " + key + " failed: " + error.message;
        return;
      }
    }
    window.location.reload();
  });
}

function upload(form, file, key, progress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.upload + "?key=" + encodeURIComponent(key));
    request.setRequestHeader("X-Eddy-Csrf", form.dataset.csrf);
    if (file.type) request.setRequestHeader("Content-Type", file.type);
    request.upload.onprogress = (e) => { if (e.lengthComputable) progress(Math.round((100 * e.loaded) / e.total)); };
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new Error(request.status + " " + request.statusText));
    };
    request.onerror = () => reject(new Error("the connection failed"));
    request.send(file);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-tail]");
  if (live && window.EventSource) startTail(live);
  document.querySelectorAll("form[data-upload]").forEach(startUploads);
});
