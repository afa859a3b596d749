// The clause form: check the draft as the officer types (POST .../check with the form's CSRF token).
(function () {
  "use strict";
  var form = document.getElementById("clause-form");
  if (!form) { return; }
  var live = document.getElementById("live"),
      list = document.getElementById("live-problems"), timer = null;
  var token = form.querySelector("input[name=csrf_token]").value;
  function check() {
    var changes = {};
    form.querySelectorAll("[data-path]").forEach(function (el) { changes[el.dataset.path] = el.value; });
    live.textContent = "检查中…";
    fetch(form.dataset.checkUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({changes: changes})
    }).then(function (r) { return r.json(); }).then(function (r) {
      list.innerHTML = "";
      (r.problems || []).forEach(function (p) {
        var li = document.createElement("li");
        li.textContent = (p.file ? p.file + ":" + p.line + " " : "") + "[" + (p.clause || "-") + "] " + p.message;
        list.appendChild(li);
      });
      live.textContent = r.problems && r.problems.length ? "有 " + r.problems.length + " 个问题" : "检查通过";
      live.dataset.state = r.problems && r.problems.length ? "bad" : "ok";
    });
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 250); });
})();
