// The router: each page has its own URL (bookmarkable, reloadable); links marked data-nav
// change pages without reloading. With --auth-token the server answers 401 until a token is
// given, and the console then shows only the token form.

import { AuthRequired, token } from "./api.js";
import { errorBox, h, ready } from "./ui.js";
import { webhooksPage } from "./webhooks.js";
import { webhookPage } from "./webhook.js";
import { deliveryPage } from "./delivery.js";

const ROUTES = [
  [/^\/ui\/?$/, webhooksPage],
  [/^\/ui\/webhooks\/([^/]+)$/, webhookPage],
  [/^\/ui\/deliveries\/([^/]+)$/, deliveryPage],
];

export function navigate(path) {
  window.history.pushState(null, "", path);
  render();
}

let rendering = 0;

export async function render() {
  const turn = ++rendering;
  const main = document.getElementById("main");
  main.setAttribute("aria-busy", "true");
  delete main.dataset.page;
  const signOut = document.getElementById("sign-out");
  signOut.hidden = !token.get();
  const path = window.location.pathname;
  const found = ROUTES.map(([pattern, page]) => [path.match(pattern), page]).find(([m]) => m);
  const view = h("div", { class: "page" }, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(view);
  if (!found) {
    view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No console page at ", path, "."));
    ready(main, "not-found");
    return;
  }
  const [match, page] = found;
  const params = new URLSearchParams(window.location.search);
  try {
    const content = await page(...match.slice(1).map(decodeURIComponent), params);
    if (turn !== rendering) return; // a later navigation won
    view.replaceChildren(content);
    ready(main, content.dataset.name || "page");
  } catch (error) {
    if (turn !== rendering) return;
    if (error instanceof AuthRequired) {
      view.replaceChildren(loginForm(Boolean(token.get())));
      token.clear();
      signOut.hidden = true;
      ready(main, "login");
      return;
    }
    view.replaceChildren(h("h1", {}, "Something went wrong"), errorBox(error));
    ready(main, "error");
  }
}

function loginForm(refused) {
  const input = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "current-password",
    required: true,
    placeholder: "Bearer token",
  });
  const form = h(
    "form",
    {
      class: "card login",
      onsubmit: (event) => {
        event.preventDefault();
        token.set(input.value.trim());
        render();
      },
    },
    h("h1", {}, "Sign in"),
    h(
      "p",
      {},
      "This service wants a bearer token (the server's --auth-token). It is kept in this ",
      "tab's session storage only, and sent to this service only.",
    ),
    refused ? h("div", { class: "flash bad", role: "alert" }, "That token was not accepted.") : null,
    h("label", { for: "token" }, "Token"),
    input,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Continue")),
  );
  return form;
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-nav]");
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});

window.addEventListener("popstate", render);

document.getElementById("sign-out").addEventListener("click", () => {
  token.clear();
  render();
});

render();
