// The card form of a payment processor that tokenizes cards in the browser (Stripe.js,
// Accept.js): the processor's script is loaded from the address the API gives
// (Customer.cardForm), the card goes from here straight to the processor, and only the token
// it answers is put in the form's hidden clientToken field and sent to kassa.  The card inputs
// have no name attributes and sit outside the <form>, so the number is never submitted.
// The form is sent by htmx on the "kassa:tokenized" event (or plainly, without htmx); after
// htmx swaps the page part in again, the new form is set up the same way.
(function () {
  "use strict";

  var scripts = {};

  function load(src) {
    if (!scripts[src]) {
      scripts[src] = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = src;
        script.onload = resolve;
        script.onerror = function () { reject(new Error("The card processor could not be reached.")); };
        document.head.appendChild(script);
      });
    }
    return scripts[src];
  }

  function value(root, name) {
    var input = root.querySelector('[data-card="' + name + '"]');
    return input ? input.value.trim() : "";
  }

  // Each processor's script, started with its public settings: a function that tokenizes
  // the card typed in and resolves to the token kassa keeps.
  var processors = {
    stripe: function (root, settings) {
      var stripe = window.Stripe(settings.publishable_key);
      var card = stripe.elements().create("card");
      card.mount(root.querySelector("[data-card-element]"));
      return function () {
        var details = value(root, "holder") ? { name: value(root, "holder") } : {};
        return stripe.createPaymentMethod({ type: "card", card: card, billing_details: details })
          .then(function (result) {
            if (result.error) { throw new Error(result.error.message || "The card was refused."); }
            return result.paymentMethod.id;
          });
      };
    },
    authorize_net: function (root, settings) {
      return function () {
        var year = value(root, "year");
        var secureData = {
          authData: { apiLoginID: settings.apiLoginID, clientKey: settings.clientKey },
          cardData: {
            cardNumber: value(root, "number").replace(/[\s-]/g, ""),
            month: ("0" + value(root, "month")).slice(-2),
            year: year,
            cardCode: value(root, "cvc")
          }
        };
        return new Promise(function (resolve, reject) {
          window.Accept.dispatchData(secureData, function (response) {
            if (response.messages.resultCode === "Error") {
              reject(new Error(response.messages.message.map(function (m) { return m.text; }).join(" ")));
            } else {
              resolve(JSON.stringify(response.opaqueData));
            }
          });
        });
      };
    }
  };

  function setUp(root) {
    if (root.dataset.ready) { return; }
    root.dataset.ready = "yes";
    var form = root.querySelector("form");
    var button = form.querySelector("button[type=submit]");
    var problem = root.querySelector("[data-card-problem]");
    var start = processors[root.dataset.processor];
    function show(message) {
      problem.textContent = message;
      problem.hidden = !message;
    }
    if (!start) {
      show("Cards cannot be added here just now.");
      return;
    }
    load(root.dataset.script).then(function () {
      var tokenize = start(root, JSON.parse(root.dataset.settings));
      button.disabled = false;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        show("");
        button.disabled = true;
        tokenize().then(function (token) {
          form.elements.clientToken.value = token;
          if (window.htmx) { window.htmx.trigger(form, "kassa:tokenized"); } else { form.submit(); }
        }).catch(function (error) {
          show(error.message);
          button.disabled = false;
        });
      });
    }, function (error) { show(error.message); });
  }

  function setUpAll(scope) {
    (scope || document).querySelectorAll("[data-card-form]").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", function () { setUpAll(document); });
  document.addEventListener("htmx:load", function (event) { setUpAll(event.detail.elt); });
})();
