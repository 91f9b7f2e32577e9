// The report-a-fake form: "share my district", with the consumer's consent, fills in a
// coarse place (two decimals, about a kilometre); the service keeps only its district.
(function () {
  var box = document.getElementById("report-share");
  if (!box || !navigator.geolocation) return;
  box.closest(".share-district").hidden = false;
  var lat = document.getElementById("report-lat"), lon = document.getElementById("report-lon");
  box.addEventListener("change", function () {
    lat.value = lon.value = "";
    if (!box.checked) return;
    navigator.geolocation.getCurrentPosition(function (pos) {
      lat.value = pos.coords.latitude.toFixed(2);
      lon.value = pos.coords.longitude.toFixed(2);
    }, function () { box.checked = false; }, {enableHighAccuracy: false, timeout: 10000});
  });
})();
