// Studio index: "Open a room" goes to /studio/<project>/<room>/ (rooms are created on first join).
const form = document.getElementById("open-room");
if (form) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const project = form.elements.project.value;
    const room = form.elements.room.value.trim();
    if (!project || !room) return;
    const url = form.dataset.urlTemplate
      .replace("PROJECT", encodeURIComponent(project))
      .replace("ROOM", encodeURIComponent(room));
    window.location.assign(url);
  });
}
