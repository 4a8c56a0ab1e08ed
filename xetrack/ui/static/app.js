// xetrack dashboard: picks the page's module by its path.
"use strict";
import { enter, main, problem, setRouter } from "./common.js";
import { experimentsPage, modelsPage } from "./tables.js";
import { runsPage } from "./runs.js";
import { chartsPage } from "./charts.js";
import { comparePage } from "./compare.js";
import { runPage } from "./run.js";

const PAGES = { "/": experimentsPage, "/runs": runsPage, "/run": runPage, "/charts": chartsPage, "/compare": comparePage, "/models": modelsPage };

setRouter(() => (PAGES[location.pathname] || experimentsPage)().catch((e) => main.replaceChildren(problem(e.message))));
window.addEventListener("popstate", () => enter());  // back and forward between pages opened in place
enter();
