// Sends the customer on to a payment system's page (portals/redirect_pay.py): submits the
// system's form, or follows the link.
const form = document.getElementById("redirect-form");
const link = document.getElementById("redirect-link");
if (form) {
  form.submit();
} else if (link) {
  window.location.assign(link.href);
}
