// The General tab's progress line: polls progress.json while a sync runs, reloads when it ends.
(function () {
  var box = document.getElementById("status"), progress = document.getElementById("sync-progress");
  if (!box || !progress || progress.hidden) return;
  var timer = setInterval(function () {
    fetch(box.dataset.progressUrl, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
      if (data.syncing && data.session) {
        progress.textContent = "Syncing: " + data.session.items_seen + (data.session.items_total ? " of " + data.session.items_total : "") + " items";
      } else { clearInterval(timer); window.location.reload(); }
    }).catch(function () { clearInterval(timer); });
  }, 1500);
})();
