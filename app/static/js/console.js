// Small behaviours for the console. No inline script anywhere: the CSP forbids it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms marked data-autosubmit submit when one of their selects changes (org switcher, filters).
  document.querySelectorAll("form[data-autosubmit] select").forEach((select) => {
    select.addEventListener("change", () => select.form.requestSubmit());
  });

  // Buttons and forms with data-confirm ask before they act (deletes, deactivations).
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });

  // Copy-to-clipboard buttons (invitation links).
  document.querySelectorAll("[data-copy-target]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copyTarget);
      if (target && navigator.clipboard) {
        navigator.clipboard.writeText(target.value || target.textContent);
        button.textContent = "Copied";
      }
    });
  });
});
