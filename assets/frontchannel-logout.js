// OpenID Connect Front-Channel Logout 1.0: once every relying party's logout frame has
// loaded (the window's load event waits for them all), or after five seconds at most,
// goes on to where the page's Continue link points (the post_logout_redirect_uri).
// Without script, the person follows the link.
(function () {
  var link = document.getElementById('continue');
  if (!link) {
    return;
  }
  var gone = false;
  function go() {
    if (!gone) {
      gone = true;
      window.location.assign(link.href);
    }
  }
  if (document.readyState === 'complete') {
    go();
  } else {
    window.addEventListener('load', go);
  }
  window.setTimeout(go, 5000);
})();
