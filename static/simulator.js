// Keep the phone scrolled to the newest message, and prefill a customer address
// that suits the chosen sender's channel.
(function () {
  function scrollDown() {
    var list = document.getElementById("transcript");
    if (list) list.scrollTop = list.scrollHeight;
  }
  document.addEventListener("DOMContentLoaded", function () {
    scrollDown();
    var select = document.getElementById("sender");
    var customer = document.getElementById("customer");
    if (select && customer) {
      select.addEventListener("change", function () {
        var option = select.options[select.selectedIndex];
        if (option && option.dataset.defaultCustomer) customer.value = option.dataset.defaultCustomer;
      });
    }
  });
  document.addEventListener("htmx:afterSwap", scrollDown);
  document.addEventListener("htmx:oobAfterSwap", scrollDown);
})();
