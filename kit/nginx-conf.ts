/**
 * The configuration of an nginx a test runs: in the foreground, as one process, with its pid file,
 * error log and temporary files under `dir` (nothing of the system's nginx is touched). `before`
 * comes first (modules, an `rtmp` block); `http` is the http block's content.
 */
export function nginxConf(dir: string, http: string, before = ''): string {
  return `${before}
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
${http}
}
`;
}
