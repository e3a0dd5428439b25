// Renders /openapi.json with Swagger UI; "Authorize" takes a bearer token when auth is on.
window.addEventListener("load", () => {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#api",
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
