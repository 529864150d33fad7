
(function () {
  "use strict";
  // Values print as the axis labels do: ms or s for latencies, k and M
  // prefixes for rates, three significant digits.
  function sig(v) { return String(Number(v.toPrecision(3))); }
  function fmt(v, u) {
    var a = Math.abs(v);
    if (u === "ms") { return a >= 1000 ? sig(v / 1000) + " s" : sig(v) + " ms"; }
    if (u === "s") { return a > 0 && a < 1 ? sig(v * 1000) + " ms" : sig(v) + " s"; }
    if (u === "%") { return sig(v) + "%"; }
    var sep = u ? " " : "";
    if (a >= 1e9) { return sig(v / 1e9) + "G" + sep + u; }
    if (a >= 1e6) { return sig(v / 1e6) + "M" + sep + u; }
    if (a >= 1e3) { return sig(v / 1e3) + "k" + sep + u; }
    return sig(v) + sep + u;
  }
  function clock(sec, span) {
    var s = Math.floor(sec), frac = sec - s, p = function (n) { return (n < 10 ? "0" : "") + n; };
    var out = span >= 3600 ? Math.floor(s / 3600) + ":" + p(Math.floor(s / 60) % 60) + ":" + p(s % 60)
                           : p(Math.floor(s / 60)) + ":" + p(s % 60);
    return span < 10 ? out + "." + String(Math.floor(frac * 10)) : out;
  }
  // nearest returns the index of the point of xs closest to x.
  function nearest(xs, x) {
    var lo = 0, hi = xs.length - 1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (xs[mid] < x) { lo = mid + 1; } else { hi = mid; }
    }
    if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) { lo--; }
    return lo;
  }
  // pct prints the percentile at u decades along a percentile axis.
  function pct(u) {
    var p = 100 * (1 - Math.pow(10, -u)), digits = Math.max(0, Math.min(6, Math.floor(u) - 1));
    return "p" + p.toFixed(digits);
  }
  // toggle switches a chart's y axis between its linear and log layers.
  function toggle(fig, button) {
    var log = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", log ? "true" : "false");
    fig.querySelectorAll("g.layer").forEach(function (g) {
      if ((g.getAttribute("data-scale") === "log") === log) { g.removeAttribute("display"); } else { g.setAttribute("display", "none"); }
    });
  }
  function setup(fig) {
    var svg = fig.querySelector("svg.plot"), tip = fig.querySelector(".tip");
    var cursor = fig.querySelector(".cursor"), d = JSON.parse(fig.getAttribute("data-chart"));
    var button = fig.querySelector("button.scale-toggle");
    if (button) { button.addEventListener("click", function () { toggle(fig, button); }); }
    function hide() { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); }
    svg.addEventListener("mouseleave", hide);
    svg.addEventListener("mousemove", function (ev) {
      var box = svg.getBoundingClientRect();
      var x = (ev.clientX - box.left) * d.w / box.width;
      if (x < d.x0 || x > d.x1) { hide(); return; }
      tip.textContent = "";
      var head = document.createElement("div");
      head.className = "tip-time";
      var at = (x - d.x0) / (d.x1 - d.x0) * d.span;
      head.textContent = d.k === "p" ? pct(at) : d.k === "n" ? (d.xl ? d.xl + " " : "") + (Math.round(at * 10) / 10) : clock(at, d.span);
      tip.appendChild(head);
      d.s.forEach(function (s) {
        var row = document.createElement("div"), name = document.createElement("span");
        var val = document.createElement("span"), text = "\u2013";
        if (s.x.length) {
          var i = nearest(s.x, x);
          if (Math.abs(s.x[i] - x) <= s.g) { text = fmt(s.v[i], d.u); }
        }
        row.className = "tip-row"; name.className = "tip-name";
        name.textContent = s.n; val.textContent = text;
        row.appendChild(name); row.appendChild(val); tip.appendChild(row);
      });
      cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
      cursor.setAttribute("visibility", "visible");
      tip.hidden = false;
      var fbox = fig.getBoundingClientRect(), left = ev.clientX - fbox.left + 14;
      if (left + tip.offsetWidth > fbox.width) { left = ev.clientX - fbox.left - tip.offsetWidth - 14; }
      tip.style.left = Math.max(0, left) + "px";
      tip.style.top = (ev.clientY - fbox.top + 10) + "px";
    });
  }
  document.querySelectorAll("figure.chart[data-chart]").forEach(setup);
})();
