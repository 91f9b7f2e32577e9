// The scan page's one script: with the consumer's consent, send a coarse place for the check.
(function () {
  var button = document.getElementById("share-place");
  if (!button || !navigator.geolocation) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    button.disabled = true;
    navigator.geolocation.getCurrentPosition(function (pos) {
      var body = new URLSearchParams();
      body.set("lat", pos.coords.latitude.toFixed(2));
      body.set("lon", pos.coords.longitude.toFixed(2));
      body.set("csrf_token", button.dataset.token);
      fetch(button.dataset.url, {method: "POST", body: body, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          var result = document.getElementById("share-result");
          result.textContent = button.dataset.done + (answer.place ? " (" + answer.place.zh + ")" : "");
        });
    }, function () { button.disabled = false; }, {enableHighAccuracy: false, timeout: 10000});
  });
})();
