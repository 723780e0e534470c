/**
 * The React 18 island that hosts Sendbird's ChatAiWidget.
 *
 * Why an island: @sendbird/chat-ai-widget 1.7.10 bundles React 18's JSX runtime, which
 * crashes on import under React 19 (the version Reflex 0.10 pins). This module carries
 * its own React 18 and renders the widget into a separate root, so the host page's React
 * never sees the widget's elements. The Reflex bridge (sample_app/components/
 * chat_ai_widget.jsx) loads this file lazily with import() and talks to it through the
 * three exports below.
 */
import React from "react";
import { createRoot } from "react-dom/client";
import { ChatAiWidget, clearWidgetSessionCache } from "@sendbird/chat-ai-widget";
// The widget's stylesheet, as text (build.mjs strips its remote font @import).
import widgetCss from "@sendbird/chat-ai-widget/dist/style.css";

const STYLE_ELEMENT_ID = "sendbird-chat-ai-widget-island-style";

/** The React version inside the island (18.x), for diagnostics and tests. */
export const islandReactVersion = React.version;

function injectWidgetStyles() {
  if (document.getElementById(STYLE_ELEMENT_ID)) return;
  const style = document.createElement("style");
  style.id = STYLE_ELEMENT_ID;
  style.textContent = widgetCss;
  document.head.appendChild(style);
}

/**
 * Render ChatAiWidget into `element` with its own React 18 root.
 *
 * @param {HTMLElement} element Host element owned by the Reflex page.
 * @param {object} props ChatAiWidget props (camelCase, as documented by Sendbird).
 * @returns {{unmount: () => void}} A handle; call unmount() before mounting again.
 */
export function mountChatAiWidget(element, props) {
  injectWidgetStyles();
  const root = createRoot(element);
  root.render(React.createElement(ChatAiWidget, props));
  let mounted = true;
  return {
    unmount() {
      if (!mounted) return;
      mounted = false;
      root.unmount();
    },
  };
}

/**
 * Forget the widget's cached channel for an app and bot (call on sign-out).
 *
 * The widget keeps `{userId, channelUrl}` in localStorage for 30 days; clearing it makes
 * the next user start from a fresh channel instead of probing the previous user's one.
 */
export function clearSessionCache(appId, botId) {
  clearWidgetSessionCache({ appId, botId });
}
