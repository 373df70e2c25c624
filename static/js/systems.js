// The link-a-system form shows only the fields of the chosen kind (all of them without script).
(function () {
  "use strict";
  const kind = document.getElementById("system_kind");
  if (!kind) return;
  const fields = document.querySelectorAll("[data-kinds]");
  function show() {
    fields.forEach(function (field) {
      field.hidden = !field.dataset.kinds.split(" ").includes(kind.value);
    });
  }
  kind.addEventListener("change", show);
  show();
})();
