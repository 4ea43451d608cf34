"""Tests of the shipping artifacts: images, manifests, Helm chart, alerts, dashboard, Argo CD."""
