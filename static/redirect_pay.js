// Submits the form that sends the customer to a payment system's page (portals/redirect_pay.py).
document.getElementById("redirect-form")?.submit();
