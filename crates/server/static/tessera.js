// Progressive enhancement only: every page works without it.
// "Show password": a checkbox after each password field switches it between hidden and shown.
"use strict";
document.querySelectorAll('input[type="password"]').forEach(function (field) {
  var label = document.createElement("label");
  label.className = "show-password";
  var box = document.createElement("input");
  box.type = "checkbox";
  box.id = field.id + "-show";
  label.htmlFor = box.id;
  box.setAttribute("aria-controls", field.id);
  box.addEventListener("change", function () {
    field.type = box.checked ? "text" : "password";
  });
  label.appendChild(box);
  label.appendChild(document.createTextNode(" Show password"));
  field.insertAdjacentElement("afterend", label);
});
// A key shown once: focusing it selects all of it, ready to copy.
document.querySelectorAll("[data-copy]").forEach(function (field) {
  field.addEventListener("focus", function () { field.select(); });
});

// Security keys and passkeys (WebAuthn): a form marked `data-webauthn="create"` or `"get"`
// carries the server's options (`{"publicKey": …}` JSON) in `data-options`; submitting it
// asks the browser's authenticator, puts the answer (`PublicKeyCredential.toJSON()`) in the
// form's hidden `credential` or `webauthn` field, and sends the form. Without JavaScript
// (or WebAuthn) these forms stay hidden; every page keeps its other way in.
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }
  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }
  function text(buffer) {
    if (!buffer) {
      return undefined;
    }
    var view = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < view.length; i++) {
      raw += String.fromCharCode(view[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: bytes(d.id) });
    });
  }
  // The browser's own parsers where it has them; the same conversion by hand where not.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = bytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: bytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = bytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }
  function toJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    var r = credential.response;
    var response = { clientDataJSON: text(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = text(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = text(r.authenticatorData);
      response.signature = text(r.signature);
      response.userHandle = text(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var section =
      form.closest("[data-webauthn-section]") || form.querySelector("[data-webauthn-section]");
    if (section) {
      section.hidden = false;
    }
    var error = form.querySelector("[data-webauthn-error]");
    var optional = form.hasAttribute("data-webauthn-optional");
    form.addEventListener("submit", function (event) {
      // A form that also takes a code asks the key only from its key button.
      if (optional && !(event.submitter && event.submitter.hasAttribute("data-webauthn-submit"))) {
        return;
      }
      event.preventDefault();
      var json = JSON.parse(form.getAttribute("data-options"));
      var publicKey = json.publicKey || json;
      var creating = form.getAttribute("data-webauthn") === "create";
      var asked = creating
        ? navigator.credentials.create({ publicKey: creationOptions(publicKey) })
        : navigator.credentials.get({ publicKey: requestOptions(publicKey) });
      asked
        .then(function (credential) {
          var field = form.querySelector('input[name="credential"], input[name="webauthn"]');
          field.value = JSON.stringify(toJSON(credential));
          var remember = form.querySelector("[data-webauthn-remember]");
          var box = document.getElementById("remember_device");
          if (remember) {
            remember.disabled = !(box && box.checked);
          }
          form.submit();
        })
        .catch(function (e) {
          if (error) {
            error.textContent =
              "Your security key did not answer (" + (e && e.name ? e.name : "error") +
              "). Try again, or use another way.";
            error.hidden = false;
          }
        });
    });
  });
})();
