// zerotouch admin: the exact time of each `<time datetime>` in the browser's own time zone
// (progressive enhancement: the server writes the relative wording, "3 min ago", and the
// exact stamp in UTC as the title; this script only rewrites the title, adding the local
// time before the UTC stamp). Nothing else changes, and pages read the same without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (!window.Intl || !Intl.DateTimeFormat) {
    return;
  }
  var local = new Intl.DateTimeFormat(undefined, {
    weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  document.querySelectorAll("time[datetime]").forEach(function (time) {
    var at = new Date(time.getAttribute("datetime"));
    if (isNaN(at.getTime()) || time.hasAttribute("data-local")) {
      return;
    }
    var utc = time.getAttribute("title") || "";
    time.setAttribute("data-local", "");
    time.title = local.format(at) + (utc ? " (" + utc + ")" : "");
  });
});
