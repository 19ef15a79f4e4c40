// The run page, live: one EventSource on /runs/<id>/live (see bot/web/live.py).
// "state" swaps the status block in, "timeline" the attempts' timeline,
// "log" appends text to a task's log, "end" closes.
(function () {
  var me = document.currentScript, url = me && me.getAttribute("data-live");
  if (!url || !window.EventSource) return;  // without it the page reloads itself (noscript)
  var source = new EventSource(url);
  source.addEventListener("state", function (e) {
    var block = document.getElementById("run-state");
    if (block) block.outerHTML = e.data;
  });
  source.addEventListener("timeline", function (e) {
    var block = document.getElementById("run-timeline");
    if (block) block.outerHTML = e.data;
  });
  source.addEventListener("log", function (e) {
    var part = JSON.parse(e.data);
    var section = document.querySelector('section.task-log[data-task="' + CSS.escape(part.task) + '"]');
    if (!section) return;
    var pre = section.querySelector("pre.log");
    if (part.fresh) pre.textContent = "";  // a new attempt: its own log
    section.setAttribute("data-attempt", part.attempt);
    pre.appendChild(document.createTextNode(part.text));
  });
  source.addEventListener("end", function () { source.close(); });
})();
