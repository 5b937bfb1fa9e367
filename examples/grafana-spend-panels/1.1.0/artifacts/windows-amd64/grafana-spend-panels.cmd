@echo off
rem Stand-in for the Grafana Spend Panels binary.
echo grafana-spend-panels 1.1.0 (windows/amd64)
