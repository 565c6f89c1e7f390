// The console's live link: one WebSocket; each frame replaces fragments by id.
// Frames carry the sequence number of the worker's (or supervisors') group: a gap
// or a reconnect asks for a snapshot, and a ping every 10 s compares numbers, so
// an offer or a message is never missed for long.
(function () {
  "use strict";
  var root = document.querySelector("[data-socket]");
  if (!root) return;
  var path = root.dataset.socket;
  var socket = null;
  var lastSeq = 0;
  var retry = 500;
  var knownOffers = new Set();
  var status = document.getElementById("connection");

  function say(text, ok) {
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("ok", !!ok);
  }

  function opened() {
    var panel = document.getElementById("conversation");
    return panel && panel.dataset.conversation ? Number(panel.dataset.conversation) : null;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function replace(fragment) {
    var current = document.getElementById(fragment.id);
    if (!current) return;
    var holder = document.createElement("div");
    holder.innerHTML = fragment.html.trim();
    var next = holder.firstElementChild;
    if (!next) return;
    if (fragment.id === "conversation" && sameTools(current, next)) {
      // The same conversation with the same tools: refresh what the server
      // knows (transcript, customer, header) and leave alone what the agent is
      // doing (a draft, an open Transfer or Complete with its choices).
      ["header.who", "#transcript", ".context"].forEach(function (selector) {
        var old = current.querySelector(selector);
        var fresh = next.querySelector(selector);
        if (old && fresh) {
          old.replaceWith(fresh);
          if (window.htmx) htmx.process(fresh);
        }
      });
      scrollTranscript();
      return;
    }
    current.replaceWith(next);
    if (window.htmx) htmx.process(next);
    if (fragment.id === "conversation") scrollTranscript();
    if (fragment.id === "offers") announceOffers(next);
  }

  function sameTools(current, next) {
    var id = current.dataset.conversation;
    if (!id || id !== next.dataset.conversation) return false;
    var shape = function (panel) {
      return ["textarea[name=body]", "select[name=template]", ".tools"].map(function (s) {
        return !!panel.querySelector(s);
      }).join();
    };
    return shape(current) === shape(next);
  }

  function announceOffers(section) {
    var seen = new Set();
    section.querySelectorAll("[data-reservation]").forEach(function (offer) {
      var id = offer.dataset.reservation;
      seen.add(id);
      if (!knownOffers.has(id)) notify(offer);
    });
    knownOffers = seen;
  }

  function notify(offer) {
    try {
      var context = new (window.AudioContext || window.webkitAudioContext)();
      var tone = context.createOscillator();
      tone.frequency.value = 880;
      tone.connect(context.destination);
      tone.start();
      tone.stop(context.currentTime + 0.15);
    } catch (e) { /* no sound allowed yet */ }
    if (window.Notification && Notification.permission === "granted" && document.hidden) {
      var who = offer.querySelector("strong");
      new Notification("New conversation", { body: who ? who.textContent : "" });
    }
  }

  function scrollTranscript() {
    var list = document.getElementById("transcript");
    if (list) list.scrollTop = list.scrollHeight;
  }

  // While a button or form of the page waits for its answer, frames wait too:
  // replacing the element a request came from would lose that answer. After
  // it, one fresh snapshot replaces whatever was held back.
  var inflight = 0;
  var heldBack = false;
  document.addEventListener("htmx:beforeRequest", function () { inflight += 1; });
  document.addEventListener("htmx:afterRequest", function () {
    inflight = Math.max(0, inflight - 1);
    if (!inflight && heldBack) {
      heldBack = false;
      send({ type: "resync" });
    }
  });

  function receive(event) {
    lastHeard = Date.now();
    var frame = JSON.parse(event.data);
    if (frame.type === "fragments" && inflight) {
      heldBack = true;
      lastSeq = Math.max(lastSeq, frame.seq);
      return;
    }
    if (frame.type === "pong") {
      if (frame.seq > lastSeq) send({ type: "resync" });
      return;
    }
    if (frame.type !== "fragments") return;
    // A frame may stand for several events in a row: "first" to "seq".
    var first = frame.first || frame.seq;
    if (!frame.snapshot && lastSeq && first > lastSeq + 1 && frame.seq > lastSeq) {
      // A message was lost on the way: render this one, then catch up.
      send({ type: "resync" });
    }
    if (frame.snapshot || frame.seq > lastSeq) lastSeq = Math.max(lastSeq, frame.seq);
    frame.fragments.forEach(replace);
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + path);
    socket.onopen = function () {
      retry = 500;
      lastHeard = Date.now();
      say("Live", true);
      shown = opened();
      if (shown) send({ type: "open", conversation: shown });
    };
    socket.onmessage = receive;
    socket.onclose = function () {
      say("Reconnecting…", false);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  // A socket that stops answering pings is half-dead: drop it and reconnect.
  var lastHeard = Date.now();
  setInterval(function () {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastHeard > 25000) {
      socket.close();
      return;
    }
    send({ type: "ping", seq: lastSeq });
  }, 10000);

  // Tell the server which conversation is on screen, so it sends its changes.
  var shown = null;
  function follow() {
    var now = opened();
    if (now && now !== shown) send({ type: "open", conversation: now });
    shown = now;
    scrollTranscript();
  }
  document.addEventListener("htmx:afterSettle", follow);
  document.addEventListener("htmx:oobAfterSwap", follow);
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (box.matches && box.matches("textarea[name=body]") && event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      box.form.requestSubmit();
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".insert-canned");
    if (!button) return;
    var box = document.querySelector("textarea[name=body]");
    if (box) { box.value = (box.value ? box.value + " " : "") + button.dataset.body; box.focus(); }
  });
  document.addEventListener("click", function askOnce() {
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
    document.removeEventListener("click", askOnce);
  });
  scrollTranscript();
  connect();
})();
