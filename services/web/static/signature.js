// The drawn signature on a notice (`#pad` in `#sign-form`): strokes follow the pointer,
// "Clear" wipes them, and the drawing goes with the form as a PNG data URL.
(function () {
  var c = document.getElementById("pad"), form = document.getElementById("sign-form");
  if (!c || !form) { return; }
  var x = c.getContext("2d"), down = false, drawn = false;
  x.lineWidth = 2; x.lineCap = "round";
  function at(e) { var r = c.getBoundingClientRect(); return [(e.clientX - r.left) * c.width / r.width, (e.clientY - r.top) * c.height / r.height]; }
  c.addEventListener("pointerdown", function (e) { down = true; var p = at(e); x.beginPath(); x.moveTo(p[0], p[1]); });
  c.addEventListener("pointermove", function (e) { if (!down) { return; } var p = at(e); x.lineTo(p[0], p[1]); x.stroke(); drawn = true; });
  window.addEventListener("pointerup", function () { down = false; });
  document.getElementById("clear").addEventListener("click", function () { x.clearRect(0, 0, c.width, c.height); drawn = false; });
  form.addEventListener("submit", function () { if (drawn) { document.getElementById("signature_png").value = c.toDataURL("image/png"); } });
})();
