/* The portal's "New request" form: help articles for the subject as it is
   typed (web/portal/new_request_page.py). Asks the help pages' JSON
   endpoint 250 ms after the last key, shows the articles as links in the
   page's aria-live region; nothing else on the page depends on it. */
(function () {
  "use strict";
  var field = document.getElementById("request-subject");
  var region = document.getElementById("suggestions");
  if (!field || !region || !window.fetch || !window.JSON) {
    return;
  }
  var found = region.querySelector(".found");
  var list = region.querySelector("ul");
  if (!found || !list) {
    return;
  }
  var endpoint = region.getAttribute("data-url");
  var timer = null;
  var asked = field.value.trim();
  var latest = 0;

  function show(articles) {
    while (list.firstChild) {
      list.removeChild(list.firstChild);
    }
    articles.forEach(function (article) {
      var url = String(article.url || "");
      if (url.charAt(0) !== "/" || url.charAt(1) === "/") {
        return; /* our own pages only */
      }
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = String(article.title || url);
      item.appendChild(link);
      if (article.category) {
        item.appendChild(document.createTextNode(" (" + article.category + ")"));
      }
      if (article.snippet) {
        var snippet = document.createElement("span");
        snippet.className = "snippet";
        snippet.textContent = String(article.snippet);
        item.appendChild(snippet);
      }
      list.appendChild(item);
    });
    found.hidden = list.children.length === 0;
  }

  function ask() {
    var text = field.value.trim();
    if (text === asked) {
      return;
    }
    asked = text;
    if (text.length < 3) {
      show([]);
      return;
    }
    var mine = ++latest;
    fetch(endpoint + "?q=" + encodeURIComponent(text), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : { articles: [] };
    }).then(function (data) {
      if (mine === latest) { /* an older answer arriving late is dropped */
        show(Array.isArray(data.articles) ? data.articles : []);
      }
    }).catch(function () { /* no suggestions: the form works without them */ });
  }

  field.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(ask, 250);
  });
})();
