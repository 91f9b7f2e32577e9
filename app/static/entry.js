// The entry page's one script: scan a QR code or barcode with the phone's camera, where the
// browser allows it, and check what it reads as if it had been typed. Decoding happens in
// the page: the browser's BarcodeDetector where it has one, else ZXing (vendored under
// static/vendor/, loaded only then). Without a camera or JavaScript, the form still works.
(function () {
  "use strict";
  var start = document.getElementById("scan-start");
  var form = document.getElementById("check-form");
  var input = document.getElementById("code");
  var box = document.getElementById("scanner");
  var video = document.getElementById("scan-video");
  var status = document.getElementById("scan-status");
  var stop = document.getElementById("scan-stop");
  var script = document.currentScript;
  if (!start || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  var FORMATS = ["qr_code", "data_matrix", "code_128", "ean_13"];
  var stream = null, timer = null;
  start.hidden = false;

  function loadZxing() {
    if (window.ZXing) return Promise.resolve(window.ZXing);
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = script.dataset.decoder;
      tag.onload = function () { resolve(window.ZXing); };
      tag.onerror = reject;
      document.head.appendChild(tag);
    });
  }

  // A decoder: a function of the video element that resolves to the text read, or null.
  function makeDecoder() {
    if ("BarcodeDetector" in window) {
      return window.BarcodeDetector.getSupportedFormats().then(function (supported) {
        var wanted = FORMATS.filter(function (f) { return supported.indexOf(f) >= 0; });
        if (!wanted.length) return zxingDecoder();
        var detector = new window.BarcodeDetector({formats: wanted});
        return function (source) {
          return detector.detect(source).then(function (found) {
            return found.length ? found[0].rawValue : null;
          });
        };
      });
    }
    return zxingDecoder();
  }

  function zxingDecoder() {
    return loadZxing().then(function (ZXing) {
      var reader = new ZXing.MultiFormatReader();
      var hints = new Map();
      hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
      reader.setHints(hints);
      var canvas = document.createElement("canvas");
      return function (source) {
        canvas.width = source.videoWidth;
        canvas.height = source.videoHeight;
        if (!canvas.width) return Promise.resolve(null);
        canvas.getContext("2d", {willReadFrequently: true}).drawImage(source, 0, 0);
        try {
          var luminance = new ZXing.HTMLCanvasElementLuminanceSource(canvas);
          var bitmap = new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(luminance));
          return Promise.resolve(reader.decodeWithState(bitmap).getText());
        } catch (nothingFound) {
          return Promise.resolve(null);
        }
      };
    });
  }

  function close() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    box.hidden = true;
    start.hidden = false;
  }

  start.addEventListener("click", function () {
    start.hidden = true;
    box.hidden = false;
    status.textContent = status.dataset.looking;
    navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}, audio: false})
      .then(function (camera) {
        stream = camera;
        video.srcObject = camera;
        return video.play().then(makeDecoder);
      })
      .then(function (decode) {
        (function look() {
          if (!stream) return;
          decode(video).then(function (text) {
            if (text) {
              close();
              input.value = text;
              form.submit();
            } else {
              timer = setTimeout(look, 200);
            }
          }, function () { timer = setTimeout(look, 200); });
        })();
      })
      .catch(function () {
        status.textContent = status.dataset.denied;
        if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
        stream = null;
      });
  });
  stop.addEventListener("click", close);
})();
