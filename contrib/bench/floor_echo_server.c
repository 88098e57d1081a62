// The floor for `annexd-bench rpc-latency`: a C epoll server on a unix socket that answers
// every line with a fixed daemon.status reply (no parsing, no allocation).
// cc -O2 -o floor contrib/bench/floor_echo_server.c && ./floor /tmp/floor.sock
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <string.h>
#include <stdio.h>
int main(int argc,char**argv){
  int s=socket(AF_UNIX,SOCK_STREAM,0); struct sockaddr_un a={.sun_family=AF_UNIX}; strcpy(a.sun_path,argv[1]); unlink(argv[1]);
  bind(s,(void*)&a,sizeof a); listen(s,16);
  int ep=epoll_create1(0); struct epoll_event ev={.events=EPOLLIN,.data.fd=s}; epoll_ctl(ep,EPOLL_CTL_ADD,s,&ev);
  const char*r="{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"version\":\"0.1.0\",\"pid\":1,\"boot\":\"abcdef\",\"uptime\":1.5,\"state_dir\":\"/tmp/x\",\"socket\":\"/tmp/x.sock\",\"tor\":\"none\",\"repos\":0,\"connections\":0,\"latest_event\":0}}\n";
  char buf[65536];
  for(;;){ struct epoll_event evs[16]; int n=epoll_wait(ep,evs,16,-1);
    for(int i=0;i<n;i++){ int fd=evs[i].data.fd;
      if(fd==s){int c=accept(s,0,0); struct epoll_event e={.events=EPOLLIN,.data.fd=c}; epoll_ctl(ep,EPOLL_CTL_ADD,c,&e);}
      else { int k=read(fd,buf,sizeof buf); if(k<=0){close(fd);continue;} for(int j=0;j<k;j++) if(buf[j]=='\n') write(fd,r,strlen(r)); } } }
}
