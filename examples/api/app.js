// The account page of examples/api.ts: plain DOM and fetch, no framework. Every request is same-origin
// and sends the session cookie (`credentials: "same-origin"`); the browser adds `Sec-Fetch-Site:
// same-origin`, which is what the server's CSRF check lets through. Server data is only ever written with
// `textContent`, never as HTML.
"use strict"

const $ = (selector) => document.querySelector(selector)

const setStatus = (text, isError = false) => {
  $("#status").textContent = text
  $("#status").classList.toggle("error", isError)
}

/** Calls the API: resolves to `{ status, body }`, the body parsed when it is JSON. */
const api = async (method, path, body) => {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await response.text()
  let parsed
  try {
    parsed = text === "" ? undefined : JSON.parse(text)
  } catch {
    parsed = text
  }
  return { status: response.status, body: parsed }
}

const describeError = ({ status, body }) => {
  if (status === 401) return "You are not logged in."
  if (status === 403) return "Refused: the request did not come from this page."
  if (status === 503) return "The session store is unavailable; try again in a moment."
  return `Error ${status}${body && body.message ? `: ${body.message}` : ""}`
}

const formatTime = (iso) => new Date(iso).toLocaleString()

const showLoggedOut = () => {
  $("#account").hidden = true
  $("#login-form").hidden = false
  $("#sessions").replaceChildren()
  $("#me").textContent = ""
}

const renderSessions = (sessions) => {
  const items = sessions.map((session) => {
    const item = document.createElement("li")
    item.dataset.session = session.id
    if (session.current) item.classList.add("current")

    const agent = document.createElement("div")
    agent.className = "agent"
    agent.textContent = (session.userAgent ?? "unknown browser") + (session.current ? " (this browser)" : "")

    const when = document.createElement("div")
    when.className = "when"
    when.textContent = `logged in ${formatTime(session.createdAt)}, last seen ${formatTime(session.lastSeenAt)}` +
      (session.address ? ` from ${session.address}` : "")

    const revoke = document.createElement("button")
    revoke.type = "button"
    revoke.className = "revoke"
    revoke.dataset.session = session.id
    revoke.textContent = session.current ? "Log out this browser" : "Revoke"
    revoke.addEventListener("click", () => run(() => revokeSession(session.id, session.current)))

    item.append(agent, when, revoke)
    return item
  })
  $("#sessions").replaceChildren(...items)
}

/** Loads `me` and the session list; shows the login form when there is no session. */
const refresh = async () => {
  const me = await api("GET", "/api/me")
  if (me.status === 401) return showLoggedOut()
  if (me.status !== 200) return setStatus(describeError(me), true)
  $("#me").textContent = `Logged in as ${me.body.name} (${me.body.user}) since ${formatTime(me.body.createdAt)}.`
  $("#login-form").hidden = true
  $("#account").hidden = false
  const list = await api("GET", "/api/sessions")
  if (list.status !== 200) return setStatus(describeError(list), true)
  renderSessions(list.body)
}

const login = async (user) => {
  const reply = await api("POST", "/api/login", { user })
  if (reply.status !== 200) return setStatus(reply.status === 400 ? "Invalid user name." : describeError(reply), true)
  setStatus(`Logged in as ${reply.body.name}.`)
  await refresh()
}

const logout = async () => {
  const reply = await api("POST", "/api/logout")
  if (reply.status !== 204) return setStatus(describeError(reply), true)
  setStatus("Logged out.")
  await refresh()
}

const logoutEverywhere = async () => {
  const reply = await api("POST", "/api/logout-everywhere")
  if (reply.status !== 200) return setStatus(describeError(reply), true)
  setStatus(`Logged out everywhere (${reply.body.cleared} session${reply.body.cleared === 1 ? "" : "s"}).`)
  await refresh()
}

const revokeSession = async (id, current) => {
  const reply = await api("DELETE", `/api/sessions/${encodeURIComponent(id)}`)
  if (reply.status !== 204) return setStatus(describeError(reply), true)
  setStatus(current ? "Logged out." : "Session revoked.")
  await refresh()
}

// Runs an action, turning a network failure into a status line.
const run = (action) => action().catch((error) => setStatus(`Network error: ${error.message}`, true))

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault()
  run(() => login($("#user").value))
})
$("#logout").addEventListener("click", () => run(logout))
$("#logout-everywhere").addEventListener("click", () => run(logoutEverywhere))

run(refresh)
