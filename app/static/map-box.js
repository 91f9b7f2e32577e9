// Draw-a-box search on the workspace map: drag a rectangle, and the form is sent with its
// corners in longitude/latitude (the inverse of the server's projection).
(function () {
  var svg = document.getElementById("map");
  var form = document.getElementById("map-form");
  if (!svg || !form) return;
  var bbox = svg.dataset.bbox.split(",").map(Number);
  var width = Number(svg.dataset.width), height = Number(svg.dataset.height);
  function toLonLat(x, y) {
    return [bbox[0] + (x / width) * (bbox[2] - bbox[0]), bbox[3] - (y / height) * (bbox[3] - bbox[1])];
  }
  function svgPoint(evt) {
    var pt = svg.createSVGPoint();
    pt.x = evt.clientX; pt.y = evt.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  var start = null, rect = null;
  svg.addEventListener("pointerdown", function (evt) {
    if (evt.target.closest("a")) return; // a point: its link opens its history
    start = svgPoint(evt);
    rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("class", "box");
    svg.appendChild(rect);
    svg.setPointerCapture(evt.pointerId);
  });
  svg.addEventListener("pointermove", function (evt) {
    if (!start) return;
    var p = svgPoint(evt);
    rect.setAttribute("x", Math.min(p.x, start.x)); rect.setAttribute("y", Math.min(p.y, start.y));
    rect.setAttribute("width", Math.abs(p.x - start.x)); rect.setAttribute("height", Math.abs(p.y - start.y));
  });
  svg.addEventListener("pointerup", function (evt) {
    if (!start) return;
    var p = svgPoint(evt);
    if (Math.abs(p.x - start.x) < 4 || Math.abs(p.y - start.y) < 4) { start = null; rect.remove(); return; }
    var a = toLonLat(Math.min(p.x, start.x), Math.max(p.y, start.y));
    var b = toLonLat(Math.max(p.x, start.x), Math.min(p.y, start.y));
    form.elements.min_lon.value = a[0].toFixed(4); form.elements.min_lat.value = a[1].toFixed(4);
    form.elements.max_lon.value = b[0].toFixed(4); form.elements.max_lat.value = b[1].toFixed(4);
    form.elements.district.value = "";
    start = null;
    form.submit();
  });
})();
