// Print buttons (the cash slip page): a hidden button with data-print is shown and prints the
// page, whose print stylesheet keeps the slip alone.  Without this script the button stays
// hidden and the browser's own Print still prints the slip alone.
(function () {
  "use strict";
  document.querySelectorAll("button[data-print][hidden]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
