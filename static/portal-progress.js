// The General tab's progress line: polls progress.json while a sync runs, reloads when it ends.
(function () {
  var box = document.getElementById("status"), progress = document.getElementById("sync-progress");
  if (!box || !progress || progress.hidden) return;
  var timer = setInterval(function () {
    fetch(box.dataset.progressUrl, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
      if (data.syncing && data.session) {
        var seen = data.session.items_seen, total = data.session.items_total;
        progress.textContent = "Syncing: " + seen + (total ? " of " + total + " items" : (seen === 1 ? " item" : " items"));
      } else { clearInterval(timer); window.location.reload(); }
    }).catch(function () { clearInterval(timer); });
  }, 1500);
})();
