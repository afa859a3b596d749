// The report page's 打印 link (no inline handler: the pages' CSP allows scripts from the site only).
(function () {
  "use strict";
  var link = document.getElementById("print-link");
  if (link) { link.addEventListener("click", function (e) { e.preventDefault(); window.print(); }); }
})();
