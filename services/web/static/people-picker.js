// The people picker of the new-notice form (`#people-picker`): finds staff and guardians as
// the sender types, without leaving the page. The words it writes come from the picker's
// `data-staff` and `data-guardian` attributes (the page's language).
(function () {
  var picker = document.getElementById("people-picker"), q = document.getElementById("people-q");
  if (!picker || !q) { return; }
  var out = document.getElementById("people-results"), timer;
  var staff = picker.getAttribute("data-staff"), guardian = picker.getAttribute("data-guardian");
  function render(list) {
    Array.prototype.forEach.call(out.querySelectorAll("label"), function (l) { if (!l.querySelector("input").checked) { l.remove(); } });
    list.forEach(function (p) {
      var taken = Array.prototype.some.call(document.querySelectorAll("input[name=people]"), function (i) { return i.value === p.key; });
      if (taken) { return; }
      var l = document.createElement("label"), i = document.createElement("input");
      l.className = "inline"; i.type = "checkbox"; i.name = "people"; i.value = p.key;
      l.appendChild(i);
      l.appendChild(document.createTextNode(" " + (p.kind === "staff" ? staff : guardian) + " " + p.name + (p.detail ? "（" + p.detail + "）" : "") + (p.phone_tail ? " ···" + p.phone_tail : "")));
      out.appendChild(l);
    });
  }
  function find() {
    fetch("/api/v1/notices/people?q=" + encodeURIComponent(q.value.trim()), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { people: [] }; })
      .then(function (d) { render(d.people); });
  }
  q.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(find, 250); });
  q.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); find(); } });
  document.getElementById("people-search").addEventListener("click", function (e) { e.preventDefault(); find(); });
  picker.addEventListener("change", function () { document.getElementById("aud-people").checked = true; });
  var roles = document.getElementById("role-choices");
  if (roles) { roles.addEventListener("change", function () { document.getElementById("aud-roles").checked = true; }); }
})();
