// OAuth 2.0 Form Post Response Mode: submits the response form as soon as the page loads.
// Without script, the person presses the form's Continue button instead.
document.forms[0].submit();
