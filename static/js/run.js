// A queued or running run's page: poll /api/runs/ID until it is done or failed.
(function () {
  "use strict";
  var st0 = document.getElementById("status");
  if (!st0 || ["queued", "running"].indexOf(st0.dataset.status) < 0) { return; }
  var labels = {queued: "排队中", running: "计算中", done: "完成", failed: "失败"};
  function poll() {
    fetch("/api/runs/" + st0.dataset.run, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (r) {
      document.getElementById("bar").style.width = r.progress + "%";
      document.getElementById("percent").textContent = r.progress + "%";
      document.getElementById("message").textContent = r.message;
      var st = document.getElementById("status");
      st.textContent = labels[r.status] || r.status;
      st.dataset.status = r.status;
      if (r.status === "done" || r.status === "failed") { window.location.reload(); } else { setTimeout(poll, 500); }
    });
  }
  setTimeout(poll, 300);
})();
