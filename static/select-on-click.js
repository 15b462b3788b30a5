// Inputs marked data-select-on-click select their whole value when clicked (links shown once, to copy).
document.addEventListener("click", function (event) {
  var input = event.target.closest("[data-select-on-click]");
  if (input) input.select();
});
