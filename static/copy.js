// Copy buttons (the Pay with Bitcoin section): a button with data-copy="ID" copies the value
// of the read-only field with that id.  Without this script the buttons stay hidden and the
// fields can still be selected and copied by hand.  Listens on the document, so sections
// that htmx swaps in work too.
(function () {
  "use strict";
  function reveal(root) {
    root.querySelectorAll("button.copy[hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  function say(button, message) {
    var section = button.closest("section");
    var status = section && section.querySelector(".copy-status");
    if (status) status.textContent = message;
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) return;
    var field = document.getElementById(button.dataset.copy);
    if (!field) return;
    var label = document.querySelector('label[for="' + field.id + '"]');
    var what = label ? label.textContent : "It";
    field.select();
    var done = function () { say(button, what + " copied."); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        say(button, "Select the field and copy it yourself.");
      });
    } else if (document.execCommand && document.execCommand("copy")) {
      done();
    } else {
      say(button, "Select the field and copy it yourself.");
    }
  });
  document.addEventListener("DOMContentLoaded", function () { reveal(document); });
  document.addEventListener("htmx:afterSwap", function (event) { reveal(event.target); });
})();
