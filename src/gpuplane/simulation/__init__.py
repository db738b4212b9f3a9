"""What only simulates, apart from the backend's mechanics: request traffic and the
simulated DCGM GPU series (the traffic simulator process), and the demo story."""
