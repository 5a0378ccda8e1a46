// Starts the vendored GraphiQL (static/vendor/graphiql) on the page /graphql serves to a
// browser (schema/http.py).  A file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline scripts.  `?q=` (and `?variables=`) open GraphiQL
// on a given operation, so a link can show one (`?query=` would run it: GraphQL over GET).
(function () {
  "use strict";
  var parameters = new URLSearchParams(window.location.search);
  var welcome = [
    "# kassa's GraphQL API. Run an operation with Ctrl-Enter or the ▶ button;",
    "# the book icon (top left) opens the documentation of every type and field.",
    "#",
    "# Sign in first: the answer sets a session cookie that GraphiQL sends with every",
    "# request. Partners set a header instead (Headers, below):",
    '#   {"Authorization": "Bearer <API key>"}',
    "#",
    '# mutation { signIn(input: {email: "admin@kassa.demo", password: "demo-admin-pass"}) {',
    "#   viewer { role } errors { code message } } }",
    "",
    "query Viewer {",
    "  viewer { authenticated role }",
    "}",
    "",
  ].join("\n");
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: welcome,
      query: parameters.get("q") || undefined,
      variables: parameters.get("variables") || undefined,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      // A bearer token typed into Headers is not kept in the browser's storage.
      shouldPersistHeaders: false,
    }),
  );
})();
