// The rooms list: participant counts kept live by asking the server every few seconds while the
// tab is visible (cheap: one grouped query for the rooms on this page).
const table = document.getElementById("rooms");
const POLL_MS = 5000;

async function refresh() {
  if (document.hidden) return;
  const rows = [...table.querySelectorAll("tbody tr[data-room]")];
  const url = `${table.dataset.countsUrl}?rooms=${encodeURIComponent(rows.map((r) => r.dataset.room).join(","))}`;
  try {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const { rooms } = await response.json();
    for (const row of rows) {
      const cell = row.querySelector(".present");
      const n = rooms[row.dataset.room];
      if (cell && typeof n === "number" && String(n) !== cell.dataset.present) {
        cell.dataset.present = String(n);
        cell.textContent = String(n);
      }
    }
  } catch {
    // Offline for a moment: the next round tries again.
  }
}

setInterval(refresh, POLL_MS);
document.addEventListener("visibilitychange", refresh);
