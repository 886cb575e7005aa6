//! What `weft up` prints once the mesh is up: where the dashboard, the
//! controller and every proxy listen, the logs, hints to try and, with
//! `--transparent`, each workload's network namespace.

use std::io::Write;

use super::{Running, ports, state};

impl Running {
    /// Prints where everything is, with `extra` lines of hints.
    pub fn print_summary(&self, extra: &[String]) {
        let state = &self.state;
        let state_flag = if self.options.explicit_state_dir {
            format!(" --state-dir {}", self.options.state_dir.display())
        } else {
            String::new()
        };
        let mut text = format!(
            "\nweft: the mesh is up\n\n  dashboard    {}\n  controller   destination {}  identity {}  admin http://{}\n",
            state.controller.api,
            state.controller.destination,
            state.controller.identity,
            state.controller.admin
        );
        text.push_str(&format!(
            "\n  {:<24} {:<16} {:<22} {:<22} {}\n",
            "workload", "inbound", "outbound (HTTP_PROXY)", "admin", "tap"
        ));
        for workload in &state.workloads {
            text.push_str(&format!(
                "  {:<24} {:<16} {:<22} {:<22} {}\n",
                format!("{}/{}", workload.namespace, workload.name),
                workload.inbound,
                workload.outbound,
                format!("http://{}", workload.admin),
                workload.tap
            ));
        }
        if self.allocated_ports {
            text.push_str(&format!(
                "\n  ports        allocated by weft up where the mesh file has none, kept in {}",
                self.options.state_dir.join(ports::PORTS_FILE).display()
            ));
        }
        text.push_str(&format!(
            "\n  logs         {}\n  state        {}\n\nTry:\n",
            state.log_dir.display(),
            self.options.state_dir.join(state::UP_FILE).display()
        ));
        if let Some(namespace) = state.workloads.first().map(|workload| &workload.namespace) {
            text.push_str(&format!("  weft{state_flag} stat -n {namespace} deploy\n"));
            text.push_str(&format!("  weft{state_flag} tap -n {namespace} deploy\n"));
        }
        text.push_str(&format!("  weft{state_flag} dashboard\n"));
        for line in extra {
            text.push_str(&format!("  {line}\n"));
        }
        text.push_str("\nPress Ctrl-C to stop everything.\n");
        print!("{text}");
        let _ = std::io::stdout().flush();
    }

    /// With `--transparent`, a line per workload: its namespace and address.
    pub fn namespace_lines(&self) -> Vec<String> {
        let Some((layout, _)) = &self.namespaces else {
            return Vec::new();
        };
        self.plan
            .workloads
            .iter()
            .zip(&layout.workloads)
            .map(|(workload, net)| {
                format!(
                    "ip netns exec {} sh   # {} at {}",
                    net.netns,
                    workload.key(),
                    net.ip
                )
            })
            .collect()
    }
}
