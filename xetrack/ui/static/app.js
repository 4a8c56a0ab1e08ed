// xetrack dashboard: picks the page's module by its path.
"use strict";
import { main, problem, updateNav } from "./common.js";
import { experimentsPage, modelsPage } from "./tables.js";
import { runsPage } from "./runs.js";
import { chartsPage } from "./charts.js";
import { comparePage } from "./compare.js";
import { runPage } from "./run.js";

const PAGES = { "/": experimentsPage, "/runs": runsPage, "/run": runPage, "/charts": chartsPage, "/compare": comparePage, "/models": modelsPage };

updateNav();
(PAGES[location.pathname] || experimentsPage)().catch((e) => main.replaceChildren(problem(e.message)));
