import { render } from "preact";
import { App } from "./app";
import { initPerf } from "./perf";

initPerf();
render(<App />, document.getElementById("app")!);
