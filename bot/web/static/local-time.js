// Times in the viewer's own zone. Every <time datetime="…UTC…"> keeps its relative text
// ("5 min ago") and gets the absolute time in the browser's timezone next to it: in the
// .local span the server drew after it (the zone it knew), else in one added here. The
// exact UTC stays in the title tooltip. Without JavaScript the server's text stays.
(function () {
  var format = {year: "numeric", month: "short", day: "numeric",
                hour: "2-digit", minute: "2-digit", hourCycle: "h23"};

  function localize(root) {
    var times = root.querySelectorAll ? root.querySelectorAll("time[datetime]") : [];
    Array.prototype.forEach.call(times, function (el) {
      var at = new Date(el.getAttribute("datetime"));
      if (isNaN(at.getTime())) return;  // not a moment: left as the server wrote it
      var text = at.toLocaleString([], format);
      var next = el.nextElementSibling;
      if (!next || !next.classList.contains("local")) {
        next = document.createElement("span");
        next.className = "local";
        el.insertAdjacentElement("afterend", next);
        el.insertAdjacentText("afterend", " ");
      }
      next.textContent = text;
      next.setAttribute("data-local-zone", "browser");
    });
  }

  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  document.addEventListener("htmx:afterSwap", function (e) { localize(e.target); });
})();
