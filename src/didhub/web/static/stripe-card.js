// didhub billing with the Stripe gateway: the card is typed into Stripe's own
// card element (an iframe from js.stripe.com), turned into a PaymentMethod by
// Stripe.js, and only its id (pm_…) is posted to didhub.
(function () {
  "use strict";

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-stripe-key]");
    if (!form) { return; }
    var errors = form.querySelector("#card-errors");
    if (typeof window.Stripe !== "function") {
      errors.textContent = "Stripe couldn't be loaded; check your connection and reload the page.";
      return;
    }
    var stripe = window.Stripe(form.getAttribute("data-stripe-key"));
    var card = stripe.elements().create("card", { hidePostalCode: false });
    card.mount("#card-element");
    card.on("change", function (event) {
      errors.textContent = event.error ? event.error.message : "";
    });
    form.addEventListener("submit", function (event) {
      var token = form.querySelector("#card-token");
      if (event.submitter && event.submitter.hasAttribute("formaction")) { return; } // Remove card
      if (token.value) { return; }
      event.preventDefault();
      stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
        if (result.error) {
          errors.textContent = result.error.message;
          return;
        }
        token.value = result.paymentMethod.id;
        form.submit();
      });
    });
  });
})();
