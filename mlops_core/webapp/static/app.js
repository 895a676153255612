// The Age Calculator: validates the form, sends the row as it was typed to the API (POST {apiUrl}/predict,
// text/csv) and shows the predicted rings and age, or the API's refusal. The API URL comes from config.js.
"use strict";

// name, label, hint, [min, max] in the survey's units (mm or grams divided by 200)
const MEASUREMENTS = [
  ["length", "Length", "longest shell measurement, mm / 200", 0.01, 1.0],
  ["diameter", "Diameter", "perpendicular to the length, mm / 200", 0.01, 1.0],
  ["height", "Height", "with meat in shell, mm / 200", 0.0, 1.2],
  ["whole_weight", "Whole weight", "whole abalone, grams / 200", 0.001, 3.0],
  ["shucked_weight", "Shucked weight", "weight of the meat, grams / 200", 0.0005, 2.0],
  ["viscera_weight", "Viscera weight", "gut weight after bleeding, grams / 200", 0.0005, 1.0],
  ["shell_weight", "Shell weight", "after being dried, grams / 200", 0.0005, 1.5],
];
const EXAMPLE = { length: "0.455", diameter: "0.365", height: "0.095", whole_weight: "0.514",
                  shucked_weight: "0.2245", viscera_weight: "0.101", shell_weight: "0.15" };

function apiUrl() {
  const config = window.AGE_CALCULATOR_CONFIG || {};
  return (config.apiUrl || "").replace(/\/$/, "") + "/predict";
}

function buildFields() {
  const container = document.getElementById("measurements");
  for (const [name, label, hint, min, max] of MEASUREMENTS) {
    const field = document.createElement("div");
    field.className = "field";
    field.innerHTML =
      `<label for="${name}">${label}</label>` +
      `<input id="${name}" name="${name}" type="text" inputmode="decimal" autocomplete="off" required ` +
      `aria-describedby="${name}-hint ${name}-message" value="${EXAMPLE[name]}">` +
      `<span class="hint" id="${name}-hint">${hint}, from ${min} to ${max}</span>` +
      `<span class="message" id="${name}-message" aria-live="polite"></span>`;
    container.appendChild(field);
  }
}

// The message for one field's text, or "" when it is valid.
function validate(label, text, min, max) {
  const value = text.trim();
  if (value === "") return `${label} is required.`;
  if (!/^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/.test(value)) return `${label} must be a number, like 0.45.`;
  const number = Number(value);
  if (number < min || number > max) return `${label} must be between ${min} and ${max}.`;
  return "";
}

function checkForm() {
  let firstBad = null;
  const values = [];
  for (const [name, label, , min, max] of MEASUREMENTS) {
    const input = document.getElementById(name);
    const message = validate(label, input.value, min, max);
    document.getElementById(`${name}-message`).textContent = message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
    if (message && !firstBad) firstBad = input;
    values.push(input.value.trim());
  }
  return { firstBad, values };
}

function show(id, text) {
  const element = document.getElementById(id);
  element.textContent = text;
  element.hidden = false;
}

async function predict(row) {
  const response = await fetch(apiUrl(), {
    method: "POST", headers: { "Content-Type": "text/csv", "Accept": "application/json" }, body: row,
  });
  let answer = {};
  try { answer = await response.json(); } catch (_) { /* not JSON: keep the status */ }
  if (!response.ok) {
    const reason = answer.error || answer.message || answer.Message || response.statusText;
    throw new Error(`The calculator refused the measurements (${response.status}): ${reason}`);
  }
  return answer.predictions[0];
}

async function onSubmit(event) {
  event.preventDefault();
  document.getElementById("error").hidden = true;
  const { firstBad, values } = checkForm();
  if (firstBad) {
    document.getElementById("result").hidden = true;
    firstBad.focus();
    return;
  }
  const sex = document.querySelector('input[name="sex"]:checked').value;
  const button = document.getElementById("submit");
  button.disabled = true;
  try {
    const prediction = await predict([sex, ...values].join(","));
    document.getElementById("age").textContent = prediction.age.toFixed(1);
    document.getElementById("rings").textContent = prediction.rings.toFixed(1);
    document.getElementById("result").hidden = false;
  } catch (error) {
    document.getElementById("result").hidden = true;
    show("error", error.message);
  } finally {
    button.disabled = false;
  }
}

buildFields();
document.getElementById("calculator").addEventListener("submit", onSubmit);
