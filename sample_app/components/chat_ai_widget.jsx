/**
 * Bridge between Reflex (React 19) and the ChatAiWidget island (React 18).
 *
 * Reflex renders <ChatAiWidgetBridge>, a plain <div>. After mount, the bridge import()s the
 * island bundle (so the 1.3 MB widget stays off the page's critical path) and renders the
 * widget into that div with the island's own React 18 root. The page that contains the
 * bridge calls preloadIsland(url) as its script runs, so the bundle is downloaded while the
 * server issues the first token, and the import() after mount finds it ready.
 *
 * Session handling: the widget calls configureSession(sdk) once and keeps the returned
 * handlers. onSessionTokenRequired(resolve, reject) is parked under a request id and sent to
 * the server as an event (onSessionTokenRequired(requestId)); the server answers through the
 * `tokenReply` prop ({request_id, token, error}) and the bridge settles the matching promise.
 * The other three callbacks are forwarded as events so the app can show them.
 *
 * Connection state: configureSession(sdk) receives the Sendbird Chat SDK instance before
 * UIKit calls sdk.connect(userId, token), so the bridge observes the real connection on
 * that instance (see observeConnection) and reports it as onConnectionStatus(state,
 * detail). The server says "Connected" only then, not when the island has mounted.
 *
 * Stale channels: a remount for a new remountKey (Reconnect) first forgets the widget's
 * cached channel, so a channel deleted at Sendbird cannot leave the new widget blank.
 */
import { useEffect, useRef } from "react";
import { preload } from "react-dom";

// The server answers in well under a second; the SDK itself gives up after 60 s.
const TOKEN_REPLY_TIMEOUT_MS = 30000;

// An absolute URL: Vite's dev server rewrites root-relative import()s of files in public/
// (and then refuses them); the island is a finished bundle to load as-is.
const absolute = (url) => new URL(url, window.location.href).href;

// How long the island may wait for an idle moment before it is run anyway.
const PRELOAD_IDLE_TIMEOUT_MS = 3000;
// How long the "mounted" report may wait for one (see the bridge's mount effect).
const MOUNTED_REPORT_IDLE_TIMEOUT_MS = 1000;
// Where there is no requestIdleCallback (Safari), how long "when idle" waits instead.
const IDLE_FALLBACK_DELAY_MS = 200;

const whenIdle = (run, timeout) =>
  typeof window.requestIdleCallback === "function"
    ? window.requestIdleCallback(run, { timeout })
    : setTimeout(run, IDLE_FALLBACK_DELAY_MS);

/**
 * Get the island ready before the widget can mount: fetched at once, run when idle.
 *
 * Called at module level by the page's script (ChatAiWidget.add_custom_code), long before
 * the widget can mount (it waits for the first session token). A <link rel="modulepreload">
 * starts the download (the bundle's name carries its content hash and servers mark it
 * immutable, so a returning visitor's browser takes it from its cache without asking);
 * once the page is idle, which is while it waits for the token, the module is run too
 * (about 100 ms of script), so that at mount only the widget's own render is left. Running
 * it mounts nothing and injects no styles. Does nothing while the page is prerendered.
 */
export function preloadIsland(url) {
  if (typeof document === "undefined") return;
  const href = absolute(url);
  const links = document.head.querySelectorAll('link[rel="modulepreload"]');
  if ([...links].some((link) => link.href === href)) return;
  const link = document.createElement("link");
  link.rel = "modulepreload";
  link.href = href;
  document.head.appendChild(link);
  // A failure is reported by the mount that needs the module (and retried there).
  whenIdle(() => loadIsland(url).catch(() => {}), PRELOAD_IDLE_TIMEOUT_MS);
}

/**
 * The URL the widget (1.7.10) fetches its settings from before it shows anything: with the
 * manual session strategy `{apiHost}/v3/bots/{botId}/{appId}/widget_setting?`, no query,
 * a plain fetch() (no headers, no credentials).
 */
export function widgetSettingsUrl(apiHost, botId, applicationId) {
  return `${apiHost.replace(/\/$/, "")}/v3/bots/${botId}/${applicationId}/widget_setting?`;
}

/**
 * Fetch the widget's settings while the server issues the first token.
 *
 * The widget asks for them only once it has mounted, and shows its launcher only once they
 * have arrived: one round trip to Sendbird (the sandbox here) after the island has run.
 * Rendered beside the widget, not inside its condition, this component gets the ids as
 * soon as the page load's first state update carries them (before the token when one is
 * issued; with a cached one, in the same update, while the island runs), and asks
 * the browser to preload the same request (`as: "fetch"`, CORS without credentials, as
 * the widget's fetch() is), which the widget's fetch() then takes from the preload cache.
 * The settings are public (the widget fetches them without any token). React dedupes
 * repeated preloads of one URL, so re-renders cost nothing.
 */
export function WidgetSettingsPreload({ apiHost, botId, applicationId }) {
  if (apiHost && botId && applicationId) {
    preload(widgetSettingsUrl(apiHost, botId, applicationId), {
      as: "fetch",
      crossOrigin: "anonymous",
    });
  }
  return null;
}

// User Timing marks of the island's way to the screen (the launcher benchmark reads them).
const mark = (name) => performance?.mark?.(`chat-ai-widget:${name}`);

// One island module per page, whatever the number of mounts.
const islandModules = new Map();
function loadIsland(url) {
  if (!islandModules.has(url)) {
    mark("island-import");
    const promise = import(/* @vite-ignore */ absolute(url));
    promise.then(() => mark("island-ready"), () => {});
    promise.catch(() => islandModules.delete(url)); // let a later mount retry
    islandModules.set(url, promise);
  }
  return islandModules.get(url);
}

// The ChatAiWidget props the bridge passes through (everything else is the bridge's own,
// or Reflex's, such as css and id).
const WIDGET_PROPS = [
  "applicationId", "botId", "userId", "sessionToken", "userNickName", "autoOpen",
  "enableEmojiFeedback", "enableMention", "deviceType", "stringSet",
  "enableResetHistoryOnConnect", "enableHideWidgetForDeactivatedUser",
  "enableWidgetExpandButton", "messageInputControls", "apiHost", "wsHost",
];

function errorDetail(error) {
  return {
    message: String(error?.message ?? error ?? "unknown error"),
    code: typeof error?.code === "number" ? error.code : 0,
  };
}

function errorText(error) {
  const { code, message } = errorDetail(error);
  return code ? `${code}: ${message}` : message;
}

// Codes on which UIKit asks onSessionTokenRequired for a new token and connects once more
// (SESSION_TOKEN_EXPIRED, INVALID_TOKEN): not a failure yet.
const TOKEN_RETRY_CODES = new Set([400302, 400111]);
// A safety net for transitions no handler reported (see observeConnection).
const CONNECTION_POLL_MS = 2000;
let connectionHandlerSerial = 0;

/**
 * Report the SDK's connection state through `report(state, detail)`; returns a stop().
 *
 * Read from the instance configureSession receives, three ways:
 * 1. sdk.connect is wrapped on the instance (UIKit calls it right after configureSession):
 *    "connecting", then "connected" or "failed" with "code: message". On 400302/400111
 *    UIKit fetches a new token and calls connect again, so the first such refusal is
 *    still "connecting".
 * 2. A ConnectionHandler (onConnected, onReconnectStarted, onReconnectSucceeded,
 *    onReconnectFailed, onDisconnected) for everything after the first connection. The
 *    widget bundles the SDK and exports neither ConnectionHandler nor the SDK, and
 *    sdk.addConnectionHandler accepts only instances of that bundled class (instanceof), so
 *    a separately installed @sendbird/chat would be refused. The class is therefore taken
 *    from the handler UIKit itself registers on this instance (its constructor).
 * 3. sdk.connectionState ("OPEN" | "CONNECTING" | "CLOSED") is polled as a safety net.
 */
function observeConnection(sdk, report) {
  let last = "";
  let connectedOnce = false;
  let tokenRetried = false;
  const say = (state, detail = "") => {
    if (state === last && !detail) return;
    last = state;
    if (state === "connected") connectedOnce = true;
    report(state, detail);
  };
  const stops = [];

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
          if (TOKEN_RETRY_CODES.has(errorDetail(error).code) && !tokenRetried) {
            tokenRetried = true;
            say("connecting", `token refused (${errorText(error)}); asking for a new one`);
          } else {
            say("failed", errorText(error));
          }
          throw error;
        },
      );
    };
  }

  const add = sdk.addConnectionHandler;
  const key = `reflex-bridge-connection-${++connectionHandlerSerial}`;
  let registered = false;
  if (typeof add === "function") {
    sdk.addConnectionHandler = function (handlerKey, handler) {
      const result = add.call(this, handlerKey, handler);
      const ConnectionHandler = handler?.constructor;
      if (!registered && typeof ConnectionHandler === "function") {
        try {
          add.call(this, key, new ConnectionHandler({
            onConnected: () => say("connected"),
            onReconnectStarted: () => say("reconnecting"),
            onReconnectSucceeded: () => say("connected"),
            onReconnectFailed: () => say("disconnected", "the SDK could not reconnect"),
            onDisconnected: () => say("disconnected"),
          }));
          registered = true;
          stops.push(() => sdk.removeConnectionHandler?.(key));
        } catch {
          // Not the SDK's class after all: the poll below still sees the transitions.
        }
      }
      return result;
    };
  }

  const timer = setInterval(() => {
    const state = sdk.connectionState;
    if (state === "OPEN") say("connected");
    else if (connectedOnce && last === "connected") {
      say(state === "CONNECTING" ? "reconnecting" : "disconnected");
    }
  }, CONNECTION_POLL_MS);
  stops.push(() => clearInterval(timer));

  return () => {
    for (const stop of stops.splice(0)) {
      try {
        stop();
      } catch {
        // The SDK instance is being torn down anyway.
      }
    }
  };
}

export function ChatAiWidgetBridge(props) {
  const hostRef = useRef(null);
  const latest = useRef(props);
  latest.current = props;
  const pending = useRef(new Map());
  const nextRequestId = useRef(1);
  // The remountKey this bridge first mounted with: a later key is a remount (Reconnect).
  const firstRemountKey = useRef(props.remountKey);

  // One configureSession per mounted widget. Callbacks from a widget that has been
  // unmounted (its SDK still reports the disconnect) are ignored, so a remount is never
  // overwritten by the previous instance's onSessionClosed.
  // `beforeReport` runs before anything is reported to the server (see the mount effect).
  const makeConfigureSession = (isCurrent, observers, beforeReport) => (sdk) => {
    if (sdk) {
      const report = (state, detail) => {
        if (!isCurrent()) return;
        beforeReport();
        latest.current.onConnectionStatus?.(state, detail);
      };
      observers.push(observeConnection(sdk, report));
    }
    return sessionHandlers(isCurrent, beforeReport);
  };

  const sessionHandlers = (isCurrent, beforeReport) => ({
    onSessionTokenRequired: (resolve, reject) => {
      if (!isCurrent()) return reject(new Error("The chat widget was unmounted."));
      beforeReport();
      const requestId = nextRequestId.current++;
      const timer = setTimeout(() => {
        if (pending.current.delete(requestId)) {
          reject(new Error("The server did not answer the session token request in time."));
        }
      }, TOKEN_REPLY_TIMEOUT_MS);
      pending.current.set(requestId, { resolve, reject, timer });
      latest.current.onSessionTokenRequired?.(requestId);
    },
    onSessionRefreshed: () => isCurrent() && (beforeReport(), latest.current.onSessionRefreshed?.()),
    onSessionError: (error) =>
      isCurrent() && (beforeReport(), latest.current.onSessionError?.(errorDetail(error))),
    onSessionClosed: () => isCurrent() && (beforeReport(), latest.current.onSessionClosed?.()),
  });

  // The server's answer to a token request.
  const reply = props.tokenReply;
  useEffect(() => {
    const waiter = reply && pending.current.get(reply.request_id);
    if (!waiter) return;
    pending.current.delete(reply.request_id);
    clearTimeout(waiter.timer);
    if (reply.token) waiter.resolve(reply.token);
    else waiter.reject(new Error(reply.error || "The server could not issue a session token."));
  }, [reply?.request_id, reply?.token, reply?.error]);

  // Mount the island; remount when the identity changes (the widget ignores later changes
  // to userId and sessionToken) or when the server bumps remountKey (reconnect).
  const { islandUrl, applicationId, botId, userId, apiHost, wsHost, remountKey } = props;
  useEffect(() => {
    let cancelled = false;
    let handle = null;
    const observers = [];
    const status = (state, detail = "") => latest.current.onIslandStatus?.(state, detail);
    // "mounted" is reported once the page is idle, after the widget's first render (its
    // launcher), not in the middle of it: the server's answer re-renders the session panel,
    // which would otherwise compete with the widget for the main thread. Anything the widget
    // reports meanwhile (connection, session callbacks) sends it first, so the server sees
    // the order things happened in.
    let mountedDetail = null;
    const reportMounted = () => {
      if (mountedDetail === null || cancelled) return;
      const detail = mountedDetail;
      mountedDetail = null;
      status("mounted", detail);
    };
    const configureSession = makeConfigureSession(() => !cancelled, observers, reportMounted);
    status("loading"); // part of the component's contract; this app's server ignores it
    loadIsland(islandUrl)
      .then((island) => {
        if (cancelled || !hostRef.current) return;
        if (remountKey !== firstRemountKey.current) {
          // A remount the server asked for (Reconnect, after an error or a blank widget):
          // forget the cached channel, so a channel that no longer exists at Sendbird (a
          // deleted or re-created user lost its memberships) is replaced by a new one.
          island.clearSessionCache(applicationId, botId);
        }
        const widgetProps = { configureSession };
        for (const name of WIDGET_PROPS) {
          const value = latest.current[name];
          if (value !== undefined && value !== null) widgetProps[name] = value;
        }
        widgetProps.callbacks = {
          onWidgetSettingFailure: (error) => {
            reportMounted(); // the mount first, as for every other report
            status("error", `Widget settings could not be loaded: ${errorDetail(error).message}`);
          },
        };
        mark("widget-mount");
        handle = island.mountChatAiWidget(hostRef.current, widgetProps);
        mountedDetail = String(island.islandReactVersion);
        whenIdle(reportMounted, MOUNTED_REPORT_IDLE_TIMEOUT_MS);
      })
      .catch((error) => {
        if (!cancelled) status("error", `The chat widget failed to load: ${errorDetail(error).message}`);
      });
    return () => {
      cancelled = true;
      handle?.unmount();
      for (const stop of observers.splice(0)) stop();
      for (const waiter of pending.current.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error("The chat widget was unmounted."));
      }
      pending.current.clear();
    };
  }, [islandUrl, applicationId, botId, userId, apiHost, wsHost, remountKey]);

  return <div ref={hostRef} data-testid="chat-ai-widget-host" data-user-id={userId} />;
}

