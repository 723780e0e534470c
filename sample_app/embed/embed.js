/**
 * The embed page's script: Sendbird's AI chatbot widget with server-issued session tokens,
 * in plain JavaScript (no Reflex runtime, no build step). Served as /embed/embed.js.
 *
 * Configuration: `window.sampleChatConfig`, set by the page before this module runs (in
 * the spirit of Sendbird's `window.chatbotConfig`); every key is optional:
 *
 *   apiBase          where the HTTP API lives ("" = this origin)
 *   signInUrl        where the "Sign in" link goes ("/sign-in")
 *   islandUrl        the widget island module ("/embed/island.js")
 *   container        the id of the element the widget mounts in ("sample-chat")
 *   tokenStorageKey  the localStorage key of the app's sign-in token
 *                    ("sample_app_sign_in_token", written by the Reflex pages)
 *   getSignInToken   a function returning the sign-in token (or a promise of it), for a
 *                    host page that keeps it elsewhere; replaces the localStorage lookup
 *   clearSignInToken a function called on sign-out with the token, when getSignInToken is set
 *   widgetProps      extra ChatAiWidget props (autoOpen, enableEmojiFeedback, ...); the
 *                    session props below always come from the server and win
 *
 * Flow:
 * 1. No sign-in token: show the "Sign in" link; no request is made.
 * 2. POST {apiBase}/api/sendbird/session-token {"refresh": false} with the sign-in token as
 *    a Bearer credential. The answer names the Sendbird user, app, bot and hosts.
 * 3. import() the island and mount ChatAiWidget with userId + sessionToken + a
 *    configureSession function (all three: otherwise the widget silently signs in an
 *    anonymous user). userNickName is the server's nickname (the widget's default, "User",
 *    would overwrite it at Sendbird on every connect).
 * 4. onSessionTokenRequired(resolve, reject): the same POST with {"refresh": true};
 *    resolve(token) on success, reject(Error) on any failure, never resolve(null) (that
 *    closes the session and crashes the widget on the next send).
 * 5. Sign out: unmount the widget, DELETE {apiBase}/api/sendbird/session?sign_out=true
 *    (the server revokes the user's session tokens and the sign-in), forget the widget's
 *    cached channel, remove the sign-in token.
 *
 * Nothing secret is in this file; no token is ever written to the console or the DOM.
 */

const DEFAULTS = {
  apiBase: "",
  signInUrl: "/sign-in",
  islandUrl: "/embed/island.js",
  container: "sample-chat",
  tokenStorageKey: "sample_app_sign_in_token",
  getSignInToken: null,
  clearSignInToken: null,
  widgetProps: {},
};
const config = { ...DEFAULTS, ...(window.sampleChatConfig || {}) };

// The server answers in well under a second; the SDK itself gives up after 60 s.
const REQUEST_TIMEOUT_MS = 30000;
// Codes on which UIKit asks for a new token and connects once more: not a failure yet.
const TOKEN_RETRY_CODES = new Set([400302, 400111]);
const CONNECTION_POLL_MS = 2000;
// Props the page never takes from widgetProps: they come from the server's answer.
const SESSION_PROPS = new Set([
  "applicationId", "botId", "userId", "sessionToken", "userNickName", "apiHost", "wsHost",
  "configureSession",
]);

const $ = (id) => document.getElementById(id);
const ui = {
  signedOut: $("sample-chat-signed-out"),
  signInLink: $("sample-chat-sign-in"),
  panel: $("sample-chat-panel"),
  status: $("sample-chat-status"),
  user: $("sample-chat-user"),
  expiry: $("sample-chat-expiry"),
  error: $("sample-chat-error"),
  signOut: $("sample-chat-sign-out"),
  notice: $("sample-chat-notice"),
  host: $(config.container),
};

// ---- the session panel (plain DOM, text only) ----

function setStatus(status) {
  if (!ui.status) return;
  ui.status.textContent = status;
  ui.status.dataset.status = status;
}

function setError(message) {
  if (!ui.error) return;
  ui.error.textContent = message || "none";
  ui.error.dataset.hasError = message ? "true" : "false";
}

function setNotice(message) {
  if (ui.notice) ui.notice.textContent = message || "";
}

function showToken(reply) {
  if (ui.user) ui.user.textContent = reply.user_id;
  if (ui.expiry) {
    const when = new Date(reply.expires_at_ms || reply.expires_at);
    const valid = !Number.isNaN(when.getTime());
    ui.expiry.dateTime = valid ? when.toISOString() : "";
    ui.expiry.textContent = valid ? when.toLocaleString() : String(reply.expires_at ?? "");
  }
}

function showSignedOut(notice) {
  if (ui.signInLink) ui.signInLink.href = config.signInUrl;
  if (ui.panel) ui.panel.hidden = true;
  if (ui.signedOut) ui.signedOut.hidden = false;
  setNotice(notice);
}

function showPanel() {
  if (ui.signedOut) ui.signedOut.hidden = true;
  if (ui.panel) ui.panel.hidden = false;
  if (ui.signOut) ui.signOut.disabled = false;
}

function errorText(error) {
  const message = String(error?.message ?? error ?? "unknown error");
  return typeof error?.code === "number" && error.code ? `${error.code}: ${message}` : message;
}

// ---- the sign-in token ----

async function currentSignInToken() {
  if (typeof config.getSignInToken === "function") {
    return (await config.getSignInToken()) || "";
  }
  try {
    return window.localStorage.getItem(config.tokenStorageKey) || "";
  } catch {
    return ""; // storage blocked: treat as signed out
  }
}

async function forgetSignInToken(token) {
  if (typeof config.getSignInToken === "function") {
    if (typeof config.clearSignInToken === "function") await config.clearSignInToken(token);
    return;
  }
  try {
    // Only the token this page used: another tab may have signed in since.
    if (window.localStorage.getItem(config.tokenStorageKey) === token) {
      window.localStorage.removeItem(config.tokenStorageKey);
    }
  } catch {
    // Storage blocked: nothing stored either.
  }
}

// ---- the HTTP API ----

class ApiError extends Error {
  constructor(status, error, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.error = error;
  }
}

function apiUrl(path) {
  return `${String(config.apiBase || "").replace(/\/+$/, "")}${path}`;
}

async function callApi(method, path, signInToken, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = { Authorization: `Bearer ${signInToken}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal: controller.signal,
    });
  } catch {
    throw new ApiError(
      0,
      "network",
      controller.signal.aborted
        ? "The server did not answer in time."
        : "The server could not be reached.",
    );
  } finally {
    clearTimeout(timer);
  }
  if (response.ok) return response;
  const reply = await response.json().catch(() => null);
  let message = typeof reply?.message === "string" && reply.message
    ? reply.message
    : `The server answered HTTP ${response.status}.`;
  const retryAfter = response.headers.get("Retry-After");
  if (response.status === 429 && retryAfter && !/try again/i.test(message)) {
    message = `${message} Try again in ${retryAfter} s.`;
  }
  throw new ApiError(response.status, String(reply?.error || "http_error"), message);
}

/** A session token for the signed-in user: {user_id, nickname, token, expires_at, ...}. */
async function requestSessionToken(refresh) {
  const signInToken = await currentSignInToken();
  if (!signInToken) throw new ApiError(401, "signed_out", "You are not signed in.");
  const response = await callApi("POST", "/api/sendbird/session-token", signInToken, {
    refresh,
  });
  const reply = await response.json().catch(() => null);
  const fields = ["user_id", "token", "app_id", "bot_id", "api_host", "ws_host"];
  if (!reply || fields.some((name) => typeof reply[name] !== "string" || !reply[name])) {
    throw new ApiError(response.status, "bad_response", "The server's token answer is malformed.");
  }
  return reply;
}

// ---- the widget ----

let islandPromise = null;
function loadIsland() {
  if (!islandPromise) {
    const url = new URL(config.islandUrl, window.location.href).href;
    islandPromise = import(url);
    islandPromise.catch(() => {
      islandPromise = null; // let a later attempt retry
    });
  }
  return islandPromise;
}

const session = {
  generation: 0, // bumped on every mount and unmount: callbacks of older widgets are ignored
  handle: null, // the island's {unmount()}
  stops: [], // connection observers to stop on unmount
  identity: null, // {appId, botId, userId} of the mounted widget
  signingOut: false,
};

/** Follow the SDK's connection on the instance configureSession receives (see the bridge). */
function observeConnection(sdk, isCurrent) {
  let connectedOnce = false;
  let tokenRetried = false;
  const say = (status) => {
    if (!isCurrent()) return;
    if (status === "connected") connectedOnce = true;
    setStatus(status);
  };
  const connect = sdk.connect;
  if (typeof connect === "function") {
    sdk.connect = function (...args) {
      say("connecting");
      return connect.apply(this, args).then(
        (user) => {
          say("connected");
          return user;
        },
        (error) => {
          if (TOKEN_RETRY_CODES.has(error?.code) && !tokenRetried) {
            tokenRetried = true; // UIKit asks onSessionTokenRequired and connects again
          } else if (isCurrent()) {
            setStatus("error");
            setError(`Could not connect: ${errorText(error)}`);
          }
          throw error;
        },
      );
    };
  }
  const timer = setInterval(() => {
    if (!isCurrent()) return;
    const state = sdk.connectionState;
    const shown = ui.status?.dataset.status;
    if (state === "OPEN" && ["connecting", "reconnecting", "disconnected"].includes(shown)) {
      say("connected");
    } else if (connectedOnce && state === "CONNECTING" && shown === "connected") {
      say("reconnecting");
    } else if (connectedOnce && state === "CLOSED" && shown === "connected") {
      say("disconnected");
    }
  }, CONNECTION_POLL_MS);
  session.stops.push(() => clearInterval(timer));
}

function sessionHandlers(isCurrent) {
  return {
    onSessionTokenRequired: (resolve, reject) => {
      if (!isCurrent()) {
        reject(new Error("The chat widget was unmounted."));
        return;
      }
      setStatus("refreshing");
      const userId = session.identity?.userId;
      requestSessionToken(true).then(
        (reply) => {
          if (!isCurrent()) {
            reject(new Error("The chat widget was unmounted."));
          } else if (reply.user_id !== userId) {
            // Another account signed in in this browser since the widget mounted.
            reject(new Error("Another account is signed in in this browser."));
            window.location.reload();
          } else {
            showToken(reply);
            resolve(reply.token);
          }
        },
        (error) => {
          reject(new Error(error.message));
          if (!isCurrent()) return;
          setStatus("error");
          setError(error.message);
          if (error.status === 401) endLocally(error.message);
        },
      );
    },
    onSessionRefreshed: () => isCurrent() && setStatus("refreshed"),
    onSessionError: (error) => {
      if (!isCurrent()) return;
      setStatus("error");
      setError(errorText(error));
    },
    onSessionClosed: () => isCurrent() && setStatus("closed"),
  };
}

function mountWidget(island, first) {
  const generation = ++session.generation;
  const isCurrent = () => generation === session.generation && !session.signingOut;
  session.identity = { appId: first.app_id, botId: first.bot_id, userId: first.user_id };
  const props = {};
  for (const [name, value] of Object.entries(config.widgetProps || {})) {
    if (!SESSION_PROPS.has(name)) props[name] = value;
  }
  Object.assign(props, {
    applicationId: first.app_id,
    botId: first.bot_id,
    userId: first.user_id,
    sessionToken: first.token,
    userNickName: first.nickname || first.user_id,
    apiHost: first.api_host,
    wsHost: first.ws_host,
    configureSession: (sdk) => {
      if (sdk) observeConnection(sdk, isCurrent);
      return sessionHandlers(isCurrent);
    },
    callbacks: {
      onWidgetSettingFailure: (error) => {
        if (!isCurrent()) return;
        setStatus("error");
        setError(`Widget settings could not be loaded: ${errorText(error)}`);
      },
    },
  });
  session.handle = island.mountChatAiWidget(ui.host, props);
  ui.host.dataset.userId = first.user_id;
}

function unmountWidget() {
  session.generation++;
  for (const stop of session.stops.splice(0)) stop();
  const handle = session.handle;
  session.handle = null;
  if (ui.host) delete ui.host.dataset.userId;
  handle?.unmount();
}

async function clearWidgetCache() {
  const identity = session.identity;
  if (!identity) return;
  try {
    const island = await loadIsland();
    island.clearSessionCache(identity.appId, identity.botId);
  } catch {
    // The island never loaded, so the widget cached nothing through this page.
  }
}

/** The server no longer accepts this sign-in (expired, or signed out elsewhere). */
async function endLocally(message) {
  const token = await currentSignInToken();
  unmountWidget();
  await clearWidgetCache();
  if (token) await forgetSignInToken(token);
  setStatus("signed out");
  showSignedOut(`${message} Sign in again to chat.`);
}

async function signOut() {
  if (session.signingOut) return;
  session.signingOut = true;
  if (ui.signOut) ui.signOut.disabled = true;
  setStatus("signing out");
  const token = await currentSignInToken();
  // Unmount first, so the widget asks for no token while its tokens are being revoked.
  unmountWidget();
  let failure = "";
  if (token) {
    try {
      await callApi("DELETE", "/api/sendbird/session?sign_out=true", token);
    } catch (error) {
      // 401: the sign-in had already ended; the server could not say whose tokens to revoke.
      failure = error.message;
    }
  }
  await clearWidgetCache();
  if (token) await forgetSignInToken(token);
  session.identity = null;
  session.signingOut = false;
  setStatus("signed out");
  showSignedOut(
    failure
      ? `Signed out in this browser, but the server reported: ${failure}`
      : "Signed out. Your chat session tokens were revoked.",
  );
}

async function start() {
  if (!ui.host) {
    setNotice(`No element with id "${config.container}" to mount the chat in.`);
    return;
  }
  if (!(await currentSignInToken())) {
    setStatus("signed out");
    showSignedOut("");
    return;
  }
  showPanel();
  setStatus("connecting");
  setError("");
  let first;
  try {
    first = await requestSessionToken(false);
  } catch (error) {
    if (error.status === 401) {
      await endLocally(error.message);
    } else {
      setStatus("error");
      setError(error.message);
    }
    return;
  }
  session.identity = { appId: first.app_id, botId: first.bot_id, userId: first.user_id };
  showToken(first);
  let island;
  try {
    island = await loadIsland();
  } catch (error) {
    setStatus("error");
    setError(`The chat widget failed to load: ${errorText(error)}`);
    return;
  }
  if (session.signingOut) return;
  mountWidget(island, first);
}

ui.signOut?.addEventListener("click", () => {
  signOut();
});

// Another tab signed out (the Reflex pages remove the token) or in as someone else.
window.addEventListener("storage", (event) => {
  if (typeof config.getSignInToken === "function" || session.signingOut) return;
  if (event.key !== config.tokenStorageKey && event.key !== null) return;
  if (event.newValue && event.newValue === event.oldValue) return;
  if (!event.newValue) {
    unmountWidget();
    clearWidgetCache().then(() => {
      setStatus("signed out");
      showSignedOut("You signed out in another tab.");
    });
  } else {
    window.location.reload();
  }
});

start();
