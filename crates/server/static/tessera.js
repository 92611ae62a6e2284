// Progressive enhancement only: every page works without it.
// "Show password": a checkbox after each password field switches it between hidden and shown.
"use strict";
document.querySelectorAll('input[type="password"]').forEach(function (field) {
  var label = document.createElement("label");
  label.className = "show-password";
  var box = document.createElement("input");
  box.type = "checkbox";
  box.id = field.id + "-show";
  label.htmlFor = box.id;
  box.setAttribute("aria-controls", field.id);
  box.addEventListener("change", function () {
    field.type = box.checked ? "text" : "password";
  });
  label.appendChild(box);
  label.appendChild(document.createTextNode(" Show password"));
  field.insertAdjacentElement("afterend", label);
});
// A key shown once: focusing it selects all of it, ready to copy.
document.querySelectorAll("[data-copy]").forEach(function (field) {
  field.addEventListener("focus", function () { field.select(); });
});
