// Voice on the Studio room page: starts a conversation with the VoiceBot (POST voice/start: the
// server creates a LiveKit room, dispatches the bot and mints this page's token), joins it with
// LiveKit's browser client (static/vendor/livekit-client-*.umd.js, a global `LivekitClient`),
// publishes the microphone and plays what the bot says. What is said lands in the room's thread.

const panel = document.getElementById("voice-panel");
const roomEl = document.getElementById("room");
const startButton = document.getElementById("voice-start");
const stopButton = document.getElementById("voice-stop");
const statusEl = document.getElementById("voice-status");
const audioEl = document.getElementById("voice-audio");
let session = null;

function show(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
  startButton.hidden = state === "connected" || state === "connecting";
  stopButton.hidden = !startButton.hidden;
}

async function start() {
  const LK = window.LivekitClient;
  if (!LK) return show("error", "The LiveKit client did not load.");
  const participantId = roomEl && roomEl.dataset.participantId;
  if (!participantId) return show("error", "Wait until the page is connected to the room.");
  show("connecting", "Starting a conversation…");
  const threadId = new URL(window.location.href).searchParams.get("thread");
  let answer;
  try {
    const response = await fetch(panel.dataset.startUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": panel.dataset.csrfToken },
      body: JSON.stringify({ participant_id: participantId, thread_id: threadId || null }),
    });
    answer = await response.json();
    if (!response.ok) return show("error", answer.error || `The server answered ${response.status}.`);
  } catch (error) {
    return show("error", `Could not start: ${error.message}`);
  }
  const room = new LK.Room({ adaptiveStream: false, dynacast: false });
  session = room;
  room.on(LK.RoomEvent.TrackSubscribed, (track) => {
    if (track.kind === LK.Track.Kind.Audio) audioEl.appendChild(track.attach());
  });
  room.on(LK.RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((el) => el.remove()));
  room.on(LK.RoomEvent.Disconnected, () => {
    if (session === room) session = null;
    show("idle", "Conversation ended.");
  });
  room.on(LK.RoomEvent.ParticipantConnected, (p) => show("connected", `Talking with ${p.name || p.identity}.`));
  try {
    await room.connect(answer.url, answer.token);
    await room.localParticipant.setMicrophoneEnabled(true);
    show("connected", "Connected: the VoiceBot is joining…");
  } catch (error) {
    session = null;
    show("error", `Could not join the LiveKit room at ${answer.url}: ${error.message}`);
  }
}

async function stop() {
  const room = session;
  session = null;
  if (room) await room.disconnect();
  show("idle", "Conversation ended.");
}

if (panel) {
  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", stop);
  window.addEventListener("pagehide", () => session && session.disconnect());
}
