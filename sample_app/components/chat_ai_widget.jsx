/**
 * Bridge between Reflex (React 19) and the ChatAiWidget island (React 18).
 *
 * Reflex renders <ChatAiWidgetBridge>, a plain <div>. After mount, the bridge import()s the
 * island bundle (so the 1.3 MB widget stays off the page's critical path) and renders the
 * widget into that div with the island's own React 18 root.
 *
 * Session handling: the widget calls configureSession(sdk) once and keeps the returned
 * handlers. onSessionTokenRequired(resolve, reject) is parked under a request id and sent to
 * the server as an event (onSessionTokenRequired(requestId)); the server answers through the
 * `tokenReply` prop ({request_id, token, error}) and the bridge settles the matching promise.
 * The other three callbacks are forwarded as events so the app can show them.
 */
import { useEffect, useRef } from "react";

// The server answers in well under a second; the SDK itself gives up after 60 s.
const TOKEN_REPLY_TIMEOUT_MS = 30000;

// One island module per page, whatever the number of mounts.
const islandModules = new Map();
function loadIsland(url) {
  if (!islandModules.has(url)) {
    // An absolute URL: Vite's dev server rewrites root-relative import()s of files in
    // public/ (and then refuses them); the island is a finished bundle to load as-is.
    const absoluteUrl = new URL(url, window.location.href).href;
    const promise = import(/* @vite-ignore */ absoluteUrl);
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

export function ChatAiWidgetBridge(props) {
  const hostRef = useRef(null);
  const latest = useRef(props);
  latest.current = props;
  const pending = useRef(new Map());
  const nextRequestId = useRef(1);

  // One configureSession per mounted widget. Callbacks from a widget that has been
  // unmounted (its SDK still reports the disconnect) are ignored, so a remount is never
  // overwritten by the previous instance's onSessionClosed.
  const makeConfigureSession = (isCurrent) => () => ({
    onSessionTokenRequired: (resolve, reject) => {
      if (!isCurrent()) return reject(new Error("The chat widget was unmounted."));
      const requestId = nextRequestId.current++;
      const timer = setTimeout(() => {
        if (pending.current.delete(requestId)) {
          reject(new Error("The server did not answer the session token request in time."));
        }
      }, TOKEN_REPLY_TIMEOUT_MS);
      pending.current.set(requestId, { resolve, reject, timer });
      latest.current.onSessionTokenRequired?.(requestId);
    },
    onSessionRefreshed: () => isCurrent() && latest.current.onSessionRefreshed?.(),
    onSessionError: (error) => isCurrent() && latest.current.onSessionError?.(errorDetail(error)),
    onSessionClosed: () => isCurrent() && latest.current.onSessionClosed?.(),
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
    const configureSession = makeConfigureSession(() => !cancelled);
    const status = (state, detail = "") => latest.current.onIslandStatus?.(state, detail);
    status("loading");
    loadIsland(islandUrl)
      .then((island) => {
        if (cancelled || !hostRef.current) return;
        const widgetProps = { configureSession };
        for (const name of WIDGET_PROPS) {
          const value = latest.current[name];
          if (value !== undefined && value !== null) widgetProps[name] = value;
        }
        widgetProps.callbacks = {
          onWidgetSettingFailure: (error) =>
            status("error", `Widget settings could not be loaded: ${errorDetail(error).message}`),
        };
        handle = island.mountChatAiWidget(hostRef.current, widgetProps);
        status("mounted", island.islandReactVersion);
      })
      .catch((error) => {
        if (!cancelled) status("error", `The chat widget failed to load: ${errorDetail(error).message}`);
      });
    return () => {
      cancelled = true;
      handle?.unmount();
      for (const waiter of pending.current.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error("The chat widget was unmounted."));
      }
      pending.current.clear();
    };
  }, [islandUrl, applicationId, botId, userId, apiHost, wsHost, remountKey]);

  return <div ref={hostRef} data-testid="chat-ai-widget-host" data-user-id={userId} />;
}

